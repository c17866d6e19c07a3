"""API tokens: shown once, stored as SHA-256 only, verified, revoked."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from assistant.accounts.tokens import create_token, list_tokens, revoke_token, verify_token
from assistant.errors import NotFound, Unauthorized
from assistant.storage import models
from assistant.storage.db import Database


@pytest.fixture()
def db(tmp_path) -> Database:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path / 'tokens.db'}")
    database.upgrade()
    with database.session() as session:
        session.add(models.User(email="bot@example.org", password_hash="x"))
        session.add(models.User(email="gone@example.org", password_hash="x", is_active=False))
    yield database
    database.dispose()


def test_a_token_is_stored_only_as_its_digest_and_verifies(db: Database) -> None:
    token, info = create_token(db, "Bot@Example.org", "ci script")
    with db.session() as session:
        row = session.scalars(select(models.ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.token_hash, row.prefix) and token.startswith(row.prefix)
    verified = verify_token(db, token)
    assert verified.id == info.id and verified.user_id == info.user_id
    assert verified.last_used_at is not None
    assert [t.name for t in list_tokens(db)] == ["ci script"]


def test_unknown_altered_and_revoked_tokens_are_refused(db: Database) -> None:
    token, info = create_token(db, "bot@example.org", "x")
    for bad in ["", "Bearer", "dat_" + "A" * 43, token[:-1] + ("A" if token[-1] != "A" else "B")]:
        with pytest.raises(Unauthorized):
            verify_token(db, bad)
    revoke_token(db, info.id)
    with pytest.raises(Unauthorized, match="revoked"):
        verify_token(db, token)


def test_tokens_only_for_active_users(db: Database) -> None:
    with pytest.raises(NotFound):
        create_token(db, "gone@example.org", "x")
    with pytest.raises(NotFound):
        create_token(db, "nobody@example.org", "x")
