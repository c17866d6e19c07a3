"""Signing in and out, CSRF, redirects, the login throttle, and one's own account."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from assistant.storage.models import AuditEntry, Conversation, User


def test_login_page_has_a_csrf_protected_form(csrf_app: Flask) -> None:
    html = csrf_app.test_client().get("/login").get_data(as_text=True)
    assert '<form method="post"' in html
    assert 'name="csrf_token"' in html
    assert 'type="password"' in html


def test_login_and_logout(client_for, accounts, login, db) -> None:  # type: ignore[no-untyped-def]
    client = client_for(None)
    assert client.get("/review").status_code == 302
    response = client.post(
        "/login",
        data={"email": accounts["reviewer"].email, "password": accounts["reviewer"].password},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/review").status_code == 200
    with db.session() as s:
        actions = [(e.action, e.actor_id) for e in s.query(AuditEntry)]
    assert ("auth.login", accounts["reviewer"].id) in actions

    assert client.get("/logout").status_code == 405  # signing out changes state: POST only
    response = client.post("/logout")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/review").status_code == 302


def test_wrong_password_does_not_sign_in(client_for, accounts) -> None:  # type: ignore[no-untyped-def]
    client = client_for(None)
    response = client.post(
        "/login", data={"email": accounts["reviewer"].email, "password": "wrong-password"}
    )
    assert response.status_code == 200
    assert b"Wrong email or password." in response.data
    assert client.get("/review").status_code == 302
    empty = client.post("/login", data={"email": accounts["reviewer"].email})
    assert b"Enter your email and password." in empty.data


def test_inactive_account_loses_its_session(client_for, accounts, db) -> None:  # type: ignore[no-untyped-def]
    from assistant.storage.models import User

    client = client_for("reviewer")
    assert client.get("/review").status_code == 200
    with db.session() as s:
        s.get(User, accounts["reviewer"].id).is_active = False
    assert client.get("/review").status_code == 302


def test_next_is_followed_only_within_the_site(client_for, accounts) -> None:  # type: ignore[no-untyped-def]
    data = {"email": accounts["admin"].email, "password": accounts["admin"].password}
    redirect = client_for(None).get("/admin").headers["Location"]
    assert redirect == "/login?next=/admin"
    assert client_for(None).post(redirect, data=data).headers["Location"] == "/admin"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"):
        response = client_for(None).post("/login", query_string={"next": evil}, data=data)
        assert response.headers["Location"] == "/", evil


def test_signed_in_user_visiting_login_is_sent_on(client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").get("/login")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_post_without_csrf_token_is_refused(csrf_app: Flask, accounts, csrf_from) -> None:  # type: ignore[no-untyped-def]
    client = csrf_app.test_client()
    data = {"email": accounts["reviewer"].email, "password": accounts["reviewer"].password}
    refused = client.post("/login", data=data)
    assert refused.status_code == 400
    assert client.get("/review").status_code == 302  # not signed in

    token = csrf_from(client.get("/login").data)
    assert client.post("/login", data={**data, "csrf_token": token}).status_code == 302

    # JSON endpoints of the browser pages need the token as a header.
    body = {"message_id": 1, "rating": 1}
    refused = client.post("/chat/feedback", json=body)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "csrf_failed"
    # Review decisions too.
    refused = client.post("/review/1", data={"action": "approve"})
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "csrf_failed"
    # Signing out too: a foreign page must not be able to sign the user out.
    assert client.post("/logout").status_code == 400
    assert client.get("/review").status_code == 200


def test_csrf_header_from_the_page_is_accepted(csrf_app: Flask, accounts, csrf_from) -> None:  # type: ignore[no-untyped-def]
    client = csrf_app.test_client()
    token = csrf_from(client.get("/login").data)
    data = {"email": accounts["reviewer"].email, "password": accounts["reviewer"].password}
    assert client.post("/login", data={**data, "csrf_token": token}).status_code == 302
    page_token = csrf_from(client.get("/review").data)
    # Past the CSRF check, the review endpoint answers on its own terms (no such item).
    response = client.post(
        "/review/999", json={"action": "approve"}, headers={"X-CSRFToken": page_token}
    )
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_repeated_failures_are_throttled(client_for, accounts) -> None:  # type: ignore[no-untyped-def]
    client = client_for(None)
    account = accounts["reviewer"]
    for _ in range(5):
        response = client.post("/login", data={"email": account.email, "password": "nope-nope"})
        assert response.status_code == 200
    # Even the right password is refused while throttled: guessing gets no signal.
    response = client.post("/login", data={"email": account.email, "password": account.password})
    assert response.status_code == 429
    assert client.get("/review").status_code == 302
    # Another account from the same address is not affected.
    other = accounts["admin"]
    response = client.post("/login", data={"email": other.email, "password": other.password})
    assert response.status_code == 302


def test_sign_out_ends_every_copy_of_the_session(app, accounts) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import login

    browser = login(app.test_client(), accounts["user"])
    cookie = browser.get_cookie("session")
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    assert thief.get("/api/conversations").status_code == 200
    browser.post("/logout")
    assert thief.get("/api/conversations").status_code == 401  # the copied cookie is dead


def test_a_password_change_keeps_this_session_and_ends_the_others(app, accounts) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import login

    user = accounts["user"]
    here, elsewhere = login(app.test_client(), user), login(app.test_client(), user)
    wrong = here.post("/account/password", data={"current": "nope-nope", "new": "new-pass-123"})
    assert wrong.status_code == 400
    done = here.post("/account/password", data={"current": user.password, "new": "new-pass-123"})
    assert done.status_code == 200 and b"Every other session" in done.data
    assert here.get("/api/conversations").status_code == 200
    assert elsewhere.get("/api/conversations").status_code == 401
    again = app.test_client().post("/login", data={"email": user.email, "password": "new-pass-123"})
    assert again.status_code == 302


def test_a_role_change_ends_the_sessions_of_the_old_role(app, accounts, client_for) -> None:  # type: ignore[no-untyped-def]
    reviewer = client_for("reviewer")
    assert reviewer.get("/api/review").status_code == 200
    admin = client_for("admin")
    changed = admin.patch(f"/api/admin/users/{accounts['reviewer'].id}", json={"role": "user"})
    assert changed.status_code == 200, changed.get_json()
    assert reviewer.get("/api/review").status_code == 401


def test_a_user_deletes_their_account_with_their_password(app, accounts, store_turn, db) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import login

    user = accounts["user"]
    store_turn(user.id)
    here, elsewhere = login(app.test_client(), user), login(app.test_client(), user)
    assert b"Delete my account" in here.get("/account/delete").data
    wrong = here.post("/account/delete", data={"password": "not-my-password"})
    assert wrong.status_code == 400 and b"not right" in wrong.data
    assert here.get("/api/conversations").get_json()["conversations"]  # nothing went

    done = here.post("/account/delete", data={"password": user.password})
    assert done.status_code == 200 and b"Your account is deleted" in done.data
    assert here.get("/api/conversations").status_code == 401
    assert elsewhere.get("/api/conversations").status_code == 401  # every session ended
    with db.session() as s:
        assert s.get(User, user.id) is None
        assert s.scalars(select(Conversation).where(Conversation.user_id == user.id)).all() == []
    again = app.test_client().post("/login", data={"email": user.email, "password": user.password})
    assert again.status_code == 200 and b"Wrong email or password" in again.data


def test_the_last_admin_cannot_delete_their_own_account(app, accounts) -> None:  # type: ignore[no-untyped-def]
    from tests.web.conftest import login

    admin = login(app.test_client(), accounts["admin"])
    refused = admin.post("/account/delete", data={"password": accounts["admin"].password})
    assert refused.status_code == 409 and b"last active admin" in refused.data
    assert admin.get("/api/admin/users").status_code == 200  # still signed in
