"""The review core: the queue with its filters and counts, one decision per item, and what
the asker sees of a held answer after each kind of decision."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.errors import Conflict, Forbidden, InvalidInput, NotFound
from assistant.review import queue as review
from assistant.storage.db import Database
from assistant.storage.models import AuditEntry, Conversation, Message, ReviewItem, User


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'review.db'}")
    database.upgrade()
    with database.session() as s:  # reviewers 1 and 2; the questions are asked by user 3
        for email in ("r1@example.org", "r2@example.org", "u@example.org"):
            s.add(User(email=email, password_hash="x"))
    yield database
    database.dispose()


def add_item(db: Database, reasons: list[str], collection: str, held: bool = True) -> int:
    with db.session() as s:
        user = s.scalar(select(User).where(User.email == "u@example.org"))
        conversation = Conversation(user_id=user.id, title="t", collection=collection)
        s.add(conversation)
        s.flush()
        s.add(Message(conversation_id=conversation.id, role="user", content="Q?"))
        answer = Message(conversation_id=conversation.id, role="assistant", content="A.")
        s.add(answer)
        s.flush()
        item = ReviewItem(message_id=answer.id, reasons=reasons, held=held)
        s.add(item)
        s.flush()
        return item.id


def test_queue_filters_and_counts(db: Database) -> None:
    first = add_item(db, ["low_retrieval_confidence", "missing_citation"], "medical")
    second = add_item(db, ["missing_citation"], "legal")
    with db.session() as s:
        every = review.pending_items(s)
        legal = review.pending_items(s, review.QueueFilter(collection="legal"))
        low = review.pending_items(s, review.QueueFilter(reason="low_retrieval_confidence"))
        counts = review.queue_counts(s)
    assert [i.id for i in every] == [first, second]  # oldest first
    assert [i.id for i in legal] == [second] and [i.id for i in low] == [first]
    assert every[0].question == "Q?" and every[0].answer == "A."
    assert counts.pending == 2
    assert counts.by_reason == {"low_retrieval_confidence": 1, "missing_citation": 2}
    assert counts.by_collection == {"legal": 1, "medical": 1}


def test_an_item_is_decided_once_with_one_audit_entry(db: Database) -> None:
    item = add_item(db, ["r"], "medical")
    with db.session() as s:
        decision = review.decide(s, item, 1, "approve", "", "")
    assert decision.state == "approved"
    with pytest.raises(Conflict), db.session() as s:
        review.decide(s, item, 2, "reject", "", "too late")
    with pytest.raises(NotFound), db.session() as s:
        review.decide(s, 999, 1, "approve", "", "")
    for action, edited in (("delete", ""), ("edit", "  ")):
        with pytest.raises(InvalidInput), db.session() as s:
            review.decide(s, add_item(db, ["r"], "legal"), 1, action, edited, "")
    with db.session() as s:
        entries = s.scalars(select(AuditEntry)).all()
        assert [(e.action, e.target) for e in entries] == [
            ("review.approve", f"review_item:{item}")
        ]


@pytest.mark.parametrize(
    ("action", "edited", "expected"),
    [
        ("approve", "", review.ReviewOutcome(False, "approved", None)),
        ("edit", "Better.", review.ReviewOutcome(False, "edited", "Better.")),
        ("reject", "", review.ReviewOutcome(False, "rejected", "")),
    ],
)
def test_outcomes_of_held_answers(
    db: Database, action: str, edited: str, expected: review.ReviewOutcome
) -> None:
    item = add_item(db, ["r"], "medical")
    not_held = add_item(db, ["r"], "medical", held=False)
    with db.session() as s:
        message_ids = [s.get(ReviewItem, i).message_id for i in (item, not_held)]
        assert review.outcomes(s, message_ids) == {
            message_ids[0]: review.ReviewOutcome(True, "pending", "")
        }
        review.decide(s, item, 1, action, edited, "")
    with db.session() as s:
        assert review.outcomes(s, message_ids) == {message_ids[0]: expected}


def test_nobody_reviews_answers_to_their_own_questions(db: Database) -> None:
    item = add_item(db, ["thumbs_down"], "medical")
    with db.session() as s:
        asker = s.scalar(select(User.id).where(User.email == "u@example.org"))
        assert [i.id for i in review.pending_items(s, viewer_id=asker)] == []
        assert [i.id for i in review.pending_items(s, viewer_id=1)] == [item]
    with pytest.raises(Forbidden), db.session() as s:
        review.decide(s, item, asker, "edit", "My own preferred answer.", "")


def test_every_correction_is_listed_and_only_an_earlier_one_of_this_answer_is_accepted(
    db: Database,
) -> None:
    from assistant.storage.models import Feedback, ReviewState

    item = add_item(db, ["thumbs_down"], "medical")
    other = add_item(db, ["thumbs_down"], "legal")
    with db.session() as s:
        message_id = s.get(ReviewItem, item).message_id
        other_message = s.get(ReviewItem, other).message_id
        asker = s.scalar(select(User.id).where(User.email == "u@example.org"))
        poisoned = Feedback(message_id=message_id, user_id=asker, rating=-1, correction="Poison.")
        later = Feedback(message_id=message_id, user_id=asker, rating=-1, reason="Still wrong")
        elsewhere = Feedback(message_id=other_message, user_id=asker, rating=-1, correction="X")
        s.add_all([poisoned, later, elsewhere])
        s.flush()
        ids = (poisoned.id, elsewhere.id)
    with db.session() as s:
        (pending,) = [i for i in review.pending_items(s) if i.id == item]
        # A second thumbs-down does not hide the first one's correction.
        assert [c.correction for c in pending.corrections] == ["Poison.", None]
    with pytest.raises(InvalidInput), db.session() as s:
        review.decide(s, item, 1, "accept_correction", "", "", ids[1])  # another answer's
    with db.session() as s:
        review.decide(s, item, 1, "accept_correction", "ignored text", "", ids[0])
    with db.session() as s:
        decided = s.get(ReviewItem, item)
        assert decided.state is ReviewState.EDITED and decided.edited_answer == "Poison."
        assert decided.accepted_feedback_id == ids[0]
