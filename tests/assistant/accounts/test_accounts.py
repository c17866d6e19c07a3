"""Removing an account: its rows go, other people's stay, its cached answers are forgotten,
and nothing it wrote can be read back from the database file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from assistant.accounts.removal import remove_account
from assistant.accounts.tokens import create_token
from assistant.asking.cache import CachedAnswer, DatabaseCache, normalise_for_cache
from assistant.errors import Conflict, NotFound
from assistant.storage import models
from assistant.storage.db import Database

QUESTION = "Does zebracillin interact with quetzalmycin?"
OTHER_QUESTION = "What is asthma?"
ENTRY = CachedAnswer(text="An answer [1].", sources=[], cited=[], retrieval_score=None)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'assistant.db'}")
    database.upgrade()
    yield database  # type: ignore[misc]
    database.dispose()


def add_user(db: Database, email: str, role: models.Role = models.Role.USER) -> int:
    with db.session() as s:
        user = models.User(email=email, password_hash="x", role=role)
        s.add(user)
        s.flush()
        return user.id


def add_turn(db: Database, user_id: int, question: str, reviewer_id: int | None = None) -> int:
    """A question, its answer, the asker's thumbs-down with a correction, a review item."""
    with db.session() as s:
        conversation = models.Conversation(user_id=user_id, title=question[:40])
        s.add(conversation)
        s.flush()
        s.add(models.Message(conversation_id=conversation.id, role="user", content=question))
        answer = models.Message(conversation_id=conversation.id, role="assistant", content="A.")
        s.add(answer)
        s.flush()
        s.add(
            models.Feedback(
                message_id=answer.id, user_id=user_id, rating=-1, correction="Gold " + question
            )
        )
        s.add(
            models.ReviewItem(
                message_id=answer.id,
                reasons=["thumbs_down"],
                state=models.ReviewState.EDITED if reviewer_id else models.ReviewState.PENDING,
                reviewer_id=reviewer_id,
            )
        )
        return answer.id


def count(db: Database, table: type[models.Base]) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)


def cache_with(db: Database, *questions: str) -> DatabaseCache:
    cache = DatabaseCache(db, ttl_s=3600)
    for i, question in enumerate(questions):
        cache.put(
            f"k{i}",
            ENTRY,
            question=normalise_for_cache(question),
            collection=None,
            index_version="v1",
            model_version="1:m",
        )
    return cache


def test_the_account_and_what_it_wrote_go_and_the_rest_stays(db: Database) -> None:
    admin = add_user(db, "admin@example.org", models.Role.ADMIN)
    leaving = add_user(db, "leaving@example.org")
    staying = add_user(db, "staying@example.org")
    add_turn(db, leaving, QUESTION)
    add_turn(db, leaving, "And at night?")
    kept_answer = add_turn(db, staying, OTHER_QUESTION, reviewer_id=leaving)
    create_token(db, "leaving@example.org", "laptop")
    cache = cache_with(db, QUESTION, OTHER_QUESTION)

    removed = remove_account(db, leaving, admin, cache)

    assert (removed.conversations, removed.messages, removed.feedback) == (2, 4, 2)
    assert (removed.review_items, removed.api_tokens, removed.cached_answers) == (2, 1, 1)
    with db.session() as s:
        assert s.get(models.User, leaving) is None
        assert s.scalars(select(models.Conversation.user_id)).all() == [staying]
        assert count(db, models.Message) == 2 and count(db, models.Feedback) == 1
        assert s.scalars(select(models.ApiToken)).all() == []
        # The review the leaving account made on someone else's answer stays, without a name.
        review = s.scalars(select(models.ReviewItem)).one()
        assert review.message_id == kept_answer and review.reviewer_id is None
        assert review.state is models.ReviewState.EDITED
        entry = s.scalars(
            select(models.AuditEntry).where(models.AuditEntry.action == "user.delete")
        ).one()
        assert entry.actor_id == admin and entry.target == f"user:{leaving}"
        assert "leaving" not in str(entry.details)  # counts, never the email
    assert cache.get("k0") is None and cache.get("k1") is not None


def test_the_last_active_admin_cannot_be_removed_and_unknown_ids_are_404(db: Database) -> None:
    admin = add_user(db, "admin@example.org", models.Role.ADMIN)
    with pytest.raises(Conflict):
        remove_account(db, admin, admin, None)
    with pytest.raises(NotFound):
        remove_account(db, admin + 100, admin, None)
    second = add_user(db, "second@example.org", models.Role.ADMIN)
    remove_account(db, admin, admin, None)  # another admin is left: fine
    with db.session() as s:
        assert s.get(models.User, admin) is None and s.get(models.User, second) is not None


def test_nothing_removed_can_be_read_from_the_database_files(db: Database, tmp_path: Path) -> None:
    leaving = add_user(db, "leaving@example.org")
    add_user(db, "admin@example.org", models.Role.ADMIN)
    add_turn(db, leaving, QUESTION)
    cache = cache_with(db, QUESTION)
    files = lambda: b"".join(p.read_bytes() for p in tmp_path.glob("assistant.db*"))  # noqa: E731
    assert b"zebracillin" in files()  # written (in the file or its write-ahead log)

    remove_account(db, leaving, leaving, cache)

    # secure_delete zeroes freed pages (some SQLite builds default to it, others do not);
    # the write-ahead log is checkpointed and truncated.
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    assert b"zebracillin" not in files()
    assert b"leaving@example.org" not in files()
