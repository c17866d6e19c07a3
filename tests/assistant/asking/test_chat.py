"""Conversations through the ChatService: validation, scrubbed storage, review items."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant.errors import InvalidInput, NotFound
from assistant.storage import models

pytestmark = pytest.mark.slow

PII_QUESTION = (
    "I am Margaret Thornbury, call me at 415-555-0199 or margaret.thornbury@example.com. "
    "What are the symptoms of asthma?"
)
PII_VALUES = ("Margaret", "Thornbury", "415-555-0199", "margaret.thornbury@example.com")


def make_user(services, email: str = "user@example.org") -> int:
    with services.db.session() as session:
        user = models.User(email=email, password_hash="x")
        session.add(user)
        session.flush()
        return user.id


def test_bad_questions_are_refused_before_anything_is_stored(indexed_services) -> None:
    chat = indexed_services.chat
    user_id = make_user(indexed_services, "bad@example.org")
    for question in ["", "   ", "\x00\x01", "x" * 5000]:
        with pytest.raises(InvalidInput):
            chat.start_turn(user_id, question)
    with pytest.raises(InvalidInput, match="collection"):
        chat.start_turn(user_id, "asthma?", collection="astrology")
    assert indexed_services.history.list_conversations(user_id) == []


def test_a_turn_is_stored_scrubbed_and_answered_with_citations(indexed_services) -> None:
    chat = indexed_services.chat
    user_id = make_user(indexed_services, "pii@example.org")
    turn = chat.start_turn(user_id, PII_QUESTION)
    assert "Thornbury" in turn.question  # the model sees the original question
    events = list(chat.stream_answer(turn))
    done = events[-1]
    assert done.kind == "done", done.data
    assert done.data["message_id"] and done.data["conversation_id"] == turn.conversation_id
    conversation = indexed_services.history.get_conversation(user_id, turn.conversation_id)
    stored = " ".join(m.content for m in conversation.messages) + conversation.title
    for value in PII_VALUES:
        assert value not in stored
    assert "<PERSON_1>" in conversation.messages[0].content
    assert conversation.messages[1].role == "assistant"
    assert conversation.messages[1].citations == done.data["citations"]


def test_other_users_cannot_read_or_continue_a_conversation(indexed_services) -> None:
    chat = indexed_services.chat
    owner = make_user(indexed_services, "owner@example.org")
    other = make_user(indexed_services, "other@example.org")
    turn = chat.start_turn(owner, "What is glaucoma?")
    with pytest.raises(NotFound):
        indexed_services.history.get_conversation(other, turn.conversation_id)
    with pytest.raises(NotFound):
        chat.start_turn(other, "And treatment?", conversation_id=turn.conversation_id)


def test_thumbs_down_with_correction_is_stored_and_opens_a_review(indexed_services) -> None:
    chat = indexed_services.chat
    user_id = make_user(indexed_services, "fb@example.org")
    turn = chat.start_turn(user_id, "What is psoriasis?")
    done = list(chat.stream_answer(turn))[-1].data
    feedback_id = indexed_services.feedback.add_feedback(
        user_id,
        done["message_id"],
        -1,
        correction="Ask Dr. Johnathan Pierce at 212-555-0144: it is a skin disease.",
        reason="incomplete",
    )
    with indexed_services.db.session() as session:
        feedback = session.get(models.Feedback, feedback_id)
        assert feedback.rating == -1 and "skin disease" in feedback.correction
        assert "Pierce" not in feedback.correction and "212-555-0144" not in feedback.correction
        items = session.scalars(
            select(models.ReviewItem).where(models.ReviewItem.message_id == done["message_id"])
        ).all()
        assert len(items) == 1 and "thumbs_down" in items[0].reasons
    for bad in (0, 2, True):
        with pytest.raises(InvalidInput):
            indexed_services.feedback.add_feedback(user_id, done["message_id"], bad)
    with pytest.raises(NotFound):
        stranger = make_user(indexed_services, "x@example.org")
        indexed_services.feedback.add_feedback(stranger, done["message_id"], 1)


def test_passage_bounds_are_checked(indexed_services) -> None:
    view = indexed_services.history.passage("medquad:GARD:0000491", 0, 20)
    assert view.title == "Asthma" and len(view.passage) == 20 and view.before == ""
    with pytest.raises(InvalidInput):
        indexed_services.history.passage("medquad:GARD:0000491", 10, 10**7)
    with pytest.raises(NotFound):
        indexed_services.history.passage("no-such-doc", 0, 1)
