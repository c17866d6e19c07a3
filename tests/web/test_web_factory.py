"""The app factory (keys, cookies, headers, pages without inline code, no side effects) and
the first-run step that migrates and makes the first admin."""

from __future__ import annotations

import re
import stat

import pytest
from flask import Flask

from assistant.errors import ServiceUnavailable
from assistant.provision import announce_admin_password, provision, require_schema
from assistant.settings import Settings, WebSettings
from tests.web.conftest import provisioned_app
from web import create_app


def _headers_are_strict(headers) -> None:  # type: ignore[no-untyped-def]
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize(
    "path", ["/login", "/api/health", "/openapi.json", "/static/style.css", "/no-such-page"]
)
def test_security_headers_on_every_kind_of_response(app: Flask, path: str) -> None:
    response = app.test_client().get(path, headers={"Accept": "text/html"})
    _headers_are_strict(response.headers)


def test_pages_are_not_cached_but_static_files_may_be(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/login").headers["Cache-Control"] == "no-store"
    assert client.get("/api/health").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/chat.js").headers.get("Cache-Control", "")


def test_generated_secret_key_is_private_and_stable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, web=WebSettings(admin_password="admin-password-1"))
    first = create_app(settings)
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text()) >= 64
    second = create_app(settings)
    assert first.secret_key == second.secret_key == key_file.read_text()


def test_configured_secret_key_wins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    web = WebSettings(secret_key="configured-key-0123456789", admin_password="admin-password-1")
    app = create_app(Settings(data_dir=tmp_path, web=web))
    assert app.secret_key == "configured-key-0123456789"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("secure", [False, True])
def test_session_cookie_flags(tmp_path, secure: bool) -> None:  # type: ignore[no-untyped-def]
    web = WebSettings(admin_password="admin-password-1", session_cookie_secure=secure)
    app = provisioned_app(Settings(data_dir=tmp_path, web=web))
    app.config["WTF_CSRF_ENABLED"] = False
    response = app.test_client().post(
        "/login", data={"email": "admin@localhost", "password": "admin-password-1"}
    )
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_building_the_app_neither_migrates_nor_makes_accounts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import inspect

    app = create_app(Settings(data_dir=tmp_path, web=WebSettings(admin_password="pw-123456")))
    services = app.extensions["assistant"]
    assert inspect(services.db.engine).get_table_names() == []
    with pytest.raises(ServiceUnavailable, match="init-db"):
        require_schema(services)  # what the worker checks before it starts
    assert provision(services) is None  # a given password is not generated, so not returned
    assert "users" in inspect(services.db.engine).get_table_names()
    require_schema(services)


def test_first_admin_password_is_printed_once_and_works(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, web=WebSettings(admin_email="boss@example.org"))
    app = create_app(settings)
    services = app.extensions["assistant"]
    announce_admin_password(services, provision(services))
    printed = capsys.readouterr().err
    match = re.search(r"boss@example\.org with the password: (\S+)", printed)
    assert match, printed
    app.config["WTF_CSRF_ENABLED"] = False
    login = app.test_client().post(
        "/login", data={"email": "boss@example.org", "password": match.group(1)}
    )
    assert login.status_code == 302

    announce_admin_password(services, provision(services))  # an admin exists: nothing new
    assert "password" not in capsys.readouterr().err


def test_a_given_admin_password_is_not_printed(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, web=WebSettings(admin_password="given-password"))
    services = create_app(settings).extensions["assistant"]
    announce_admin_password(services, provision(services))
    assert "given-password" not in capsys.readouterr().err


INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(rb"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(rb"<style|\sstyle\s*=", re.IGNORECASE)
EXTERNAL = re.compile(rb"(src|href)=\"(https?:)?//", re.IGNORECASE)


@pytest.mark.parametrize(
    ("who", "path"),
    [
        (None, "/login"),
        (None, "/no-such-page"),
        ("user", "/"),
        ("reviewer", "/review"),
        ("admin", "/admin"),
        ("admin", "/admin/corpus"),
        ("admin", "/admin/quality"),
        ("admin", "/admin/users"),
        ("admin", "/admin/audit"),
    ],
)
def test_pages_have_no_inline_code_and_no_third_party_assets(
    client_for, who: str | None, path: str
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(who).get(path, headers={"Accept": "text/html"})
    assert response.mimetype == "text/html"
    html = response.data
    assert not INLINE_SCRIPT.search(html)
    assert not INLINE_HANDLER.search(html)
    assert not INLINE_STYLE.search(html)
    assert not EXTERNAL.search(html)


def test_celery_is_attached_with_the_settings_broker(app: Flask, settings: Settings) -> None:
    celery_app = app.extensions["celery"]
    assert celery_app.conf.broker_url == settings.broker.url
    assert celery_app.conf.task_serializer == "json"
    assert celery_app.services is app.extensions["assistant"]


FORM = re.compile(rb"<form\b[^>]*>.*?</form>", re.IGNORECASE | re.DOTALL)


def test_every_post_form_carries_the_csrf_token(
    csrf_app: Flask, accounts, login, store_turn
) -> None:  # type: ignore[no-untyped-def]
    from assistant.storage.models import ReviewItem

    turn = store_turn(accounts["user"].id, flags=["missing_citation"])
    with csrf_app.extensions["assistant"].db.session() as s:
        s.add(ReviewItem(message_id=turn.answer_id, reasons=["missing_citation"]))
    client = csrf_app.test_client()
    token = re.search(
        rb'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").data
    )
    assert token
    response = client.post(
        "/login",
        data={
            "email": accounts["admin"].email,
            "password": accounts["admin"].password,
            "csrf_token": token.group(1).decode(),
        },
    )
    assert response.status_code == 302
    posts = 0
    for path in ("/", "/review", "/admin", "/admin/corpus", "/admin/users", "/admin/audit"):
        for form in FORM.findall(client.get(path).data):
            if b'method="post"' in form.lower():
                posts += 1
                assert b'name="csrf_token"' in form, (path, form[:200])
    assert posts >= 6  # sign-out on every page, review decisions, uploads, accounts
