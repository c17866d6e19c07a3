"""Rate limits on signing in (per address) and asking (per account), with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from assistant.accounts.users import create_user
from assistant.settings import Settings, WebSettings
from tests.web.conftest import provisioned_app


@pytest.fixture
def limited(tmp_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    app = provisioned_app(
        Settings(
            data_dir=tmp_path,
            web=WebSettings(
                admin_email="admin@example.org",
                admin_password="admin-password-1",
                login_rate_limit="3 per minute",
                ask_rate_limit="2 per minute",
                feedback_rate_limit="2 per minute",
            ),
        )
    )
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    yield app
    app.extensions["assistant"].close()


def test_sign_in_attempts_are_limited_per_address(limited: Flask) -> None:
    client = limited.test_client()
    for _ in range(3):
        assert (
            client.post("/login", data={"email": "x@example.org", "password": "p"}).status_code
            == 200
        )
    refused = client.post(
        "/login", data={"email": "admin@example.org", "password": "admin-password-1"}
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Sign out" not in refused.get_data(as_text=True)
    assert client.get("/login").status_code == 200  # reading the form is not an attempt
    other = limited.test_client()
    elsewhere = other.post(
        "/login",
        data={"email": "admin@example.org", "password": "admin-password-1"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert elsewhere.status_code == 302


def test_questions_are_limited_per_account(limited: Flask) -> None:
    db = limited.extensions["assistant"].db
    create_user(db, "a@example.org", "a-password-1", "user")
    create_user(db, "b@example.org", "b-password-1", "user")

    def signed_in(email: str, password: str):  # type: ignore[no-untyped-def]
        client = limited.test_client()
        assert client.post("/login", data={"email": email, "password": password}).status_code == 302
        return client

    a = signed_in("a@example.org", "a-password-1")
    # Empty questions are refused by validation, but they still count as asking.
    assert a.post("/api/ask", json={"question": ""}).status_code == 400
    assert a.post("/chat/ask", json={"question": ""}).status_code == 400
    limited_answer = a.post("/api/ask", json={"question": ""})
    assert limited_answer.status_code == 429
    assert limited_answer.get_json()["error"] == "too_many_requests"
    assert "Retry-After" in limited_answer.headers
    b = signed_in("b@example.org", "b-password-1")  # same address, another account
    assert b.post("/api/ask", json={"question": ""}).status_code == 400


def test_v1_and_feedback_are_limited_per_account(limited: Flask) -> None:
    from assistant.accounts.tokens import create_token

    db = limited.extensions["assistant"].db
    create_user(db, "c@example.org", "c-password-1", "user")
    token, _ = create_token(db, "c@example.org", "tests")
    client = limited.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"messages": [{"role": "user", "content": ""}]}
    codes = [
        client.post("/v1/chat/completions", json=body, headers=headers).status_code
        for _ in range(3)
    ]
    assert codes == [400, 400, 429]
    signed = limited.test_client()
    assert (
        signed.post(
            "/login", data={"email": "c@example.org", "password": "c-password-1"}
        ).status_code
        == 302
    )
    # The same account's chat questions share the budget the API spent.
    assert signed.post("/api/ask", json={"question": ""}).status_code == 429
    votes = [
        signed.post("/chat/feedback", json={"message_id": 999, "rating": 1}).status_code
        for _ in range(3)
    ]
    assert votes == [404, 404, 429]


@pytest.mark.redis
def test_limits_in_redis_are_shared_between_server_processes(tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    import uuid

    import redis

    # A database of its own: the counts of an earlier run are flushed, nothing else.
    storage = redis_url.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(storage).flushdb()
    # Two apps on one database and one Redis stand for two server processes.
    web = WebSettings(
        admin_email="admin@example.org",
        admin_password="admin-password-1",
        login_rate_limit="2 per minute",
        rate_limit_storage=storage,
        secret_key=uuid.uuid4().hex,
    )
    apps = [provisioned_app(Settings(data_dir=tmp_path, web=web)) for _ in range(2)]
    try:
        for app in apps:
            app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
        wrong = {"email": "admin@example.org", "password": "wrong-password"}
        assert apps[0].test_client().post("/login", data=wrong).status_code == 200
        assert apps[1].test_client().post("/login", data=wrong).status_code == 200
        assert apps[0].test_client().post("/login", data=wrong).status_code == 429
        assert apps[1].test_client().post("/login", data=wrong).status_code == 429
    finally:
        for app in apps:
            app.extensions["assistant"].close()
        redis.Redis.from_url(storage).flushdb()


def test_behind_a_trusted_proxy_each_client_counts_and_https_cookies_are_secure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = provisioned_app(
        Settings(
            data_dir=tmp_path,
            web=WebSettings(
                admin_email="admin@example.org",
                admin_password="admin-password-1",
                login_rate_limit="1 per minute",
                trusted_proxies=1,
            ),
        )
    )
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    try:
        client = app.test_client()
        form = {"email": "x@example.org", "password": "p"}

        def attempt(address: str) -> int:
            headers = {"X-Forwarded-For": address, "X-Forwarded-Proto": "https"}
            return client.post("/login", data=form, headers=headers).status_code

        # The proxy's own address is the same for both clients; their forwarded ones differ.
        assert [attempt("198.51.100.1"), attempt("198.51.100.1")] == [200, 429]
        assert attempt("198.51.100.2") == 200
        signed_in = client.post(
            "/login",
            data={"email": "admin@example.org", "password": "admin-password-1"},
            headers={"X-Forwarded-For": "198.51.100.3", "X-Forwarded-Proto": "https"},
        )
        assert signed_in.status_code == 302
        assert all("Secure" in c for c in signed_in.headers.getlist("Set-Cookie"))
    finally:
        app.extensions["assistant"].close()
