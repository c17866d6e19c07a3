"""A real app on a temporary SQLite database, with one account per role."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from assistant.accounts import users
from assistant.accounts.users import create_user
from assistant.provision import provision
from assistant.services import Services
from assistant.settings import Settings, WebSettings
from assistant.storage.db import Database
from assistant.storage.models import Role
from web import create_app

ADMIN_EMAIL = "admin@example.org"
ADMIN_PASSWORD = "admin-password-1"


def provisioned_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """The app as `assistant serve` builds it: the database migrated and the first admin made
    (assistant.provision) before create_app, which does neither."""
    app = create_app(settings, services)
    provision(app.extensions["assistant"])
    return app


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    password: str
    role: Role


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with low cost: the web tests sign in often; tests/assistant/accounts/test_users.py
    covers the production parameters."""
    monkeypatch.setattr(
        users, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path,
        # Every test signs in from 127.0.0.1: test_web_limits.py checks the limits themselves.
        web=WebSettings(
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            login_rate_limit="10000 per minute",
            ask_rate_limit="10000 per minute",
            feedback_rate_limit="10000 per minute",
        ),
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """CSRF off: tests about CSRF use ``csrf_app``."""
    app = provisioned_app(settings)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    yield app
    app.extensions["assistant"].close()


@pytest.fixture
def csrf_app(settings: Settings) -> Iterator[Flask]:
    app = provisioned_app(settings)
    app.config.update(TESTING=True)
    yield app
    app.extensions["assistant"].close()


@pytest.fixture
def db(app: Flask) -> Database:
    return app.extensions["assistant"].db  # type: ignore[no-any-return]


@pytest.fixture
def accounts(app: Flask, db: Database) -> dict[str, Account]:
    """admin (made by create_app), reviewer, user, and a second user ``other``."""
    return make_accounts(db)


def make_accounts(db: Database) -> dict[str, Account]:
    from assistant.accounts.users import authenticate

    admin = authenticate(db, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert admin is not None
    made = {"admin": Account(admin.id, ADMIN_EMAIL, ADMIN_PASSWORD, Role.ADMIN)}
    for name, role in (("reviewer", Role.REVIEWER), ("user", Role.USER), ("other", Role.USER)):
        email, password = f"{name}@example.org", f"{name}-password-1"
        made[name] = Account(create_user(db, email, password, role), email, password, role)
    return made


def login(client: FlaskClient, account: Account) -> FlaskClient:
    response = client.post("/login", data={"email": account.email, "password": account.password})
    assert response.status_code == 302, response.data
    return client


@pytest.fixture
def client_for(app: Flask, accounts: dict[str, Account]) -> Callable[[str | None], FlaskClient]:
    """A test client signed in as ``accounts[name]``; None gives an anonymous one."""

    def make(name: str | None) -> FlaskClient:
        client = app.test_client()
        return login(client, accounts[name]) if name else client

    return make


def csrf_from(html: bytes) -> str:
    match = re.search(rb'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF meta tag"
    return match.group(1).decode()


@pytest.fixture(name="login")
def login_fixture() -> Callable[[FlaskClient, Account], FlaskClient]:
    return login


@pytest.fixture(name="csrf_from")
def csrf_from_fixture() -> Callable[[bytes], str]:
    return csrf_from


@dataclass(frozen=True)
class StoredTurn:
    conversation_id: int
    question_id: int
    answer_id: int


CITATION = {
    "n": 1,
    "doc_id": "medical/knee-care",
    "title": "Knee care",
    "source_url": "https://example.org/knee",
    "collection": "medical",
    "start": 10,
    "end": 40,
    "score": 0.81,
}


@pytest.fixture
def store_turn(db: Database) -> Callable[..., StoredTurn]:
    """Insert a conversation with one question and its answer, straight into the tables."""
    from assistant.storage.models import Conversation, Message

    def store(
        user_id: int,
        question: str = "How do I treat a sore knee?",
        answer: str = "Rest and ice help [1].",
        title: str = "Sore knee",
        flags: list[str] | None = None,
    ) -> StoredTurn:
        with db.session() as s:
            conversation = Conversation(user_id=user_id, title=title, collection="medical")
            s.add(conversation)
            s.flush()
            asked = Message(conversation_id=conversation.id, role="user", content=question)
            s.add(asked)
            s.flush()
            answered = Message(
                conversation_id=conversation.id,
                role="assistant",
                content=answer,
                citations=[CITATION],
                flags=list(flags or []),
                flagged=bool(flags),
            )
            s.add(answered)
            s.flush()
            return StoredTurn(conversation.id, asked.id, answered.id)

    return store
