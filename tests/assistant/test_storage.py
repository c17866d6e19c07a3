"""The schema and its migrations on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from assistant.storage import models
from assistant.storage.db import Database

TABLES = {
    "users",
    "conversations",
    "messages",
    "feedback",
    "review_items",
    "documents",
    "datasets",
    "jobs",
    "model_versions",
    "audit_log",
    "answer_cache",
    "api_tokens",
    "locks",
    "app_settings",
    "alembic_version",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()


def test_migrations_create_every_table_and_run_twice(database: Database) -> None:
    assert set(inspect(database.engine).get_table_names()) >= TABLES
    database.upgrade()  # a second run is a no-op, not an error
    assert database.is_current()


def test_the_migrations_match_the_models(database: Database) -> None:
    """A column added to a model without a migration (or the reverse) fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = compare_metadata(context, models.Base.metadata)
    # Index and constraint naming differ between backends; tables and columns must agree.
    structural = [
        d
        for d in diff
        if isinstance(d, tuple)
        and d[0] in {"add_table", "remove_table", "add_column", "remove_column"}
    ]
    assert structural == []


def test_a_conversation_round_trip_keeps_json_and_enums(database: Database) -> None:
    with database.session() as session:
        user = models.User(email="u@example.org", password_hash="x", role=models.Role.REVIEWER)
        conversation = models.Conversation(user=user, title="Asthma")
        message = models.Message(
            conversation=conversation,
            role="assistant",
            content="Use an inhaler [1].",
            citations=[{"n": 1, "doc_id": "d", "start": 0, "end": 5}],
            timings={"ttft_ms": 12.5},
            flags=["missing_citation"],
            flagged=True,
        )
        session.add_all([user, conversation, message])
        session.flush()
        session.add(models.ReviewItem(message_id=message.id, reasons=["missing_citation"]))
    with database.session() as session:
        stored = session.scalars(select(models.Message)).one()
        assert stored.citations[0]["doc_id"] == "d"
        assert stored.timings == {"ttft_ms": 12.5}
        assert stored.conversation.user.role is models.Role.REVIEWER
        item = session.scalars(select(models.ReviewItem)).one()
        assert item.state is models.ReviewState.PENDING and item.reasons == ["missing_citation"]


def test_deleting_a_user_deletes_their_conversations(database: Database) -> None:
    with database.session() as session:
        user = models.User(email="gone@example.org", password_hash="x")
        session.add(models.Conversation(user=user, title="t"))
    with database.session() as session:
        session.delete(session.scalars(select(models.User)).one())
    with database.session() as session:
        assert session.scalars(select(models.Conversation)).all() == []


def test_a_failed_transaction_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as session:
        session.add(models.Job(kind="ingest"))
        session.flush()
        raise RuntimeError("crash mid-task")
    with database.session() as session:
        assert session.scalars(select(models.Job)).all() == []


def test_unique_email_is_enforced(database: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    with database.session() as session:
        session.add(models.User(email="same@example.org", password_hash="x"))
    with pytest.raises(IntegrityError), database.session() as session:
        session.add(models.User(email="same@example.org", password_hash="y"))
