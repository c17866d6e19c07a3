"""Accounts on a real temporary SQLite database."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from assistant.accounts.users import authenticate, create_user, ensure_admin, get_user
from assistant.errors import Conflict, InvalidInput
from assistant.storage.db import Database
from assistant.storage.models import Role, User


@pytest.fixture
def db(tmp_path) -> Database:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path / 'users.db'}")
    database.upgrade()
    yield database
    database.dispose()


def test_password_is_stored_as_an_argon2id_hash(db: Database) -> None:
    user_id = create_user(db, "Ann@Example.org", "correct horse", Role.REVIEWER)
    user = get_user(db, user_id)
    assert user is not None
    assert user.email == "ann@example.org"
    assert user.role is Role.REVIEWER
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash


def test_authenticate_accepts_only_the_right_password(db: Database) -> None:
    user_id = create_user(db, "ann@example.org", "correct horse")
    user = authenticate(db, "  ANN@example.org ", "correct horse")
    assert user is not None and user.id == user_id
    assert authenticate(db, "ann@example.org", "correct horse!") is None
    assert authenticate(db, "ann@example.org", "") is None
    assert authenticate(db, "nobody@example.org", "correct horse") is None


def test_inactive_user_cannot_authenticate(db: Database) -> None:
    user_id = create_user(db, "ann@example.org", "correct horse")
    with db.session() as s:
        s.get(User, user_id).is_active = False  # type: ignore[union-attr]
    assert authenticate(db, "ann@example.org", "correct horse") is None


def test_weak_hash_is_upgraded_on_login(db: Database) -> None:
    user_id = create_user(db, "ann@example.org", "correct horse")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("correct horse")
    with db.session() as s:
        s.get(User, user_id).password_hash = weak  # type: ignore[union-attr]
    assert authenticate(db, "ann@example.org", "correct horse") is not None
    upgraded = get_user(db, user_id).password_hash  # type: ignore[union-attr]
    assert upgraded != weak
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert authenticate(db, "ann@example.org", "correct horse") is not None


@pytest.mark.parametrize(
    ("email", "password", "role"),
    [
        ("not-an-email", "long enough", "user"),
        ("", "long enough", "user"),
        ("a b@example.org", "long enough", "user"),
        ("ann@example.org", "short", "user"),
        ("ann@example.org", "x" * 2000, "user"),
        ("ann@example.org", "long enough", "superuser"),
    ],
)
def test_create_user_refuses_bad_input(db: Database, email: str, password: str, role: str) -> None:
    with pytest.raises(InvalidInput):
        create_user(db, email, password, role)
    with db.session() as s:
        assert s.scalars(select(User)).all() == []


def test_duplicate_email_is_a_conflict_whatever_the_case(db: Database) -> None:
    create_user(db, "ann@example.org", "correct horse")
    with pytest.raises(Conflict):
        create_user(db, "ANN@example.org", "another password")


def test_ensure_admin_generates_a_password_once(db: Database) -> None:
    password = ensure_admin(db, "admin@localhost", "")
    assert password is not None and len(password) >= 16
    admin = authenticate(db, "admin@localhost", password)
    assert admin is not None and admin.role is Role.ADMIN
    # Idempotent: a second call creates nothing and reveals nothing.
    assert ensure_admin(db, "admin@localhost", "") is None
    assert ensure_admin(db, "second@localhost", "some password") is None
    with db.session() as s:
        assert s.scalars(select(User.email)).all() == ["admin@localhost"]


def test_ensure_admin_uses_the_given_password(db: Database) -> None:
    assert ensure_admin(db, "admin@localhost", "given password") == "given password"
    assert authenticate(db, "admin@localhost", "given password") is not None


def test_ensure_admin_does_not_promote_an_existing_user(db: Database) -> None:
    create_user(db, "admin@localhost", "user password")
    with pytest.raises(Conflict):
        ensure_admin(db, "admin@localhost", "")
    assert get_user(db, 1).role is Role.USER  # type: ignore[union-attr]
