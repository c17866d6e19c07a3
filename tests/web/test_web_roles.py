"""Who may call what: every route for anonymous, user, reviewer and admin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from assistant.settings import Settings, WebSettings
from tests.web.conftest import provisioned_app

ROLES = (None, "user", "reviewer", "admin")


# One app and one set of accounts for the whole matrix (about 150 cases): building an app
# (migrations included) for each case would cost minutes. No case here changes what the
# next one sees: refused requests, and accepted ones that change nothing.
@pytest.fixture(scope="module")
def settings(tmp_path_factory):  # type: ignore[no-untyped-def]
    from tests.web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    return Settings(
        data_dir=tmp_path_factory.mktemp("roles"),
        web=WebSettings(
            admin_email=ADMIN_EMAIL,
            admin_password=ADMIN_PASSWORD,
            login_rate_limit="10000 per minute",
            ask_rate_limit="10000 per minute",
            feedback_rate_limit="10000 per minute",
        ),
    )


@pytest.fixture(scope="module")
def app(settings):  # type: ignore[no-untyped-def]
    app = provisioned_app(settings)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    yield app
    app.extensions["assistant"].close()


@pytest.fixture(scope="module")
def accounts(app):  # type: ignore[no-untyped-def]
    from tests.web.conftest import make_accounts

    return make_accounts(app.extensions["assistant"].db)


MISSING = 999_999


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    expected: tuple[int, int, int, int]  # anonymous, user, reviewer, admin
    json: Any = None
    form: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ROUTES = [
    Route("GET", "/login", (200, 302, 302, 302)),
    Route("POST", "/login", (200, 302, 302, 302), form={"email": "a@b.c", "password": "wrong"}),
    Route("POST", "/logout", (302, 302, 302, 302)),
    Route("GET", "/account/password", (302, 200, 200, 200)),
    Route("POST", "/account/password", (302, 400, 400, 400), form={"current": "x", "new": "y"}),
    Route("GET", "/account/delete", (302, 200, 200, 200)),
    Route("POST", "/account/delete", (302, 400, 400, 400), form={"password": "wrong"}),
    Route("GET", "/", (302, 200, 200, 200)),
    Route(
        "GET",
        f"/c/{MISSING}",
        (302, 404, 404, 404),
    ),
    Route("POST", "/chat/ask", (401, 400, 400, 400), json={"question": ""}),
    Route(
        "POST",
        "/chat/feedback",
        (401, 404, 404, 404),
        json={"message_id": MISSING, "rating": 1},
    ),
    Route("GET", "/passage/no/such/doc?start=0&end=5", (401, 404, 404, 404)),
    Route("GET", "/review", (302, 403, 200, 200)),
    Route("POST", f"/review/{MISSING}", (401, 403, 404, 404), json={"action": "approve"}),
    Route("GET", "/admin", (302, 403, 403, 200)),
    Route("POST", "/admin/users", (302, 403, 403, 302), form={"email": "bad", "password": "x"}),
    Route("GET", "/api/health", (200, 200, 200, 200)),
    Route("GET", "/api/ready", (503, 503, 503, 503)),  # nothing loaded in this app
    Route("GET", "/api/conversations", (401, 200, 200, 200)),
    Route("GET", f"/api/conversations/{MISSING}", (401, 404, 404, 404)),
    Route("POST", "/api/ask", (401, 400, 400, 400), json={"question": ""}),
    Route(
        "POST",
        "/api/feedback",
        (401, 404, 404, 404),
        json={"message_id": MISSING, "rating": 1},
    ),
    Route("GET", "/api/jobs", (401, 403, 403, 200)),
    Route("GET", f"/api/jobs/{MISSING}", (401, 403, 403, 404)),
    Route("GET", "/api/review", (401, 403, 200, 200)),
    Route("GET", "/admin/corpus", (302, 403, 403, 200)),
    # An upload without files, and a re-index with nothing uploaded: refused with a message.
    Route("POST", "/admin/corpus/upload", (302, 403, 403, 302), form={"collection": "medical"}),
    Route("POST", "/admin/corpus/reindex", (302, 403, 403, 302), form={"collection": "medical"}),
    Route("GET", "/admin/corpus/documents/no/such/doc", (302, 403, 403, 404)),
    Route("POST", "/admin/corpus/documents/no/such/doc/delete", (302, 403, 403, 404)),
    Route("GET", "/admin/quality", (302, 403, 403, 200)),
    Route("GET", "/admin/users", (302, 403, 403, 200)),
    Route("POST", f"/admin/users/{MISSING}", (302, 403, 403, 302), form={"role": "user"}),
    Route("POST", f"/admin/users/{MISSING}/delete", (302, 403, 403, 302)),
    Route("GET", "/admin/audit", (302, 403, 403, 200)),
    Route("GET", "/api/admin/documents", (401, 403, 403, 200)),
    Route("GET", "/api/admin/documents/no/such/doc", (401, 403, 403, 404)),
    Route("POST", "/api/admin/reindex", (401, 403, 403, 400), json={"collection": "medical"}),
    Route("POST", "/api/admin/documents", (401, 403, 403, 400), json={"collection": "medical"}),
    Route("GET", "/api/admin/quality", (401, 403, 403, 200)),
    Route("GET", "/api/admin/users", (401, 403, 403, 200)),
    Route("PATCH", f"/api/admin/users/{MISSING}", (401, 403, 403, 404), json={"role": "user"}),
    Route("DELETE", f"/api/admin/users/{MISSING}", (401, 403, 403, 404)),
    Route("GET", "/api/admin/audit", (401, 403, 403, 200)),
    Route("GET", "/openapi.json", (200, 200, 200, 200)),
    # The learning loop's control room: admins only. Bad input so that nothing starts, but
    # building a dataset is accepted (it queues a job no worker here runs).
    Route("GET", "/admin/training", (302, 403, 403, 200)),
    Route("POST", "/admin/training/datasets", (302, 403, 403, 302)),
    Route("POST", "/admin/training/runs", (302, 403, 403, 302), form={"epochs": "many"}),
    Route("POST", f"/admin/training/models/{MISSING}/promote", (302, 403, 403, 302)),
    Route("POST", "/admin/training/rollback", (302, 403, 403, 302), form={"version_id": "x"}),
    Route("POST", "/admin/training/schedule", (302, 403, 403, 302), form={"interval_minutes": "x"}),
    Route("GET", f"/admin/training/datasets/{MISSING}/alpaca", (302, 403, 403, 404)),
    Route("GET", f"/admin/training/runs/{MISSING}/loss.svg", (302, 403, 403, 404)),
    Route("GET", "/api/training/datasets", (401, 403, 403, 200)),
    Route("POST", "/api/training/datasets", (401, 403, 403, 202), json={}),
    Route("GET", "/api/training/runs", (401, 403, 403, 200)),
    Route("POST", "/api/training/runs", (401, 403, 403, 400), json={"bogus": 1}),
    Route("GET", f"/api/training/runs/{MISSING}", (401, 403, 403, 404)),
    Route("GET", f"/api/training/runs/{MISSING}/loss", (401, 403, 403, 404)),
    Route("GET", "/api/training/models", (401, 403, 403, 200)),
    Route("POST", f"/api/training/models/{MISSING}/promote", (401, 403, 403, 404), json={}),
    Route("POST", "/api/training/rollback", (401, 403, 403, 400), json={"version_id": "x"}),
    Route("GET", "/api/training/schedule", (401, 403, 403, 200)),
    Route("PUT", "/api/training/schedule", (401, 403, 403, 400), json={"bogus": 1}),
    # The OpenAI-compatible API takes bearer tokens only: a signed-in browser session is not
    # enough, whatever its role.
    Route("GET", "/v1/models", (401, 401, 401, 401)),
    Route(
        "POST",
        "/v1/chat/completions",
        (401, 401, 401, 401),
        json={"messages": [{"role": "user", "content": "hi"}]},
    ),
    # Prometheus scrapes without a session; the figures hold no user text.
    Route("GET", "/metrics", (200, 200, 200, 200)),
]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_role_matrix(client_for, route: Route, role: str | None) -> None:  # type: ignore[no-untyped-def]
    expected = route.expected[ROLES.index(role)]
    client = client_for(role)
    response = client.open(route.path, method=route.method, json=route.json, data=route.form)
    assert response.status_code == expected, response.data[:300]
    if expected == 401 and route.path.startswith("/v1/"):
        assert response.get_json()["error"]["type"] == "authentication_error"
    elif expected == 401:
        assert response.get_json()["error"] == "unauthorized"
    if expected == 403:
        assert b"forbidden" in response.data.lower()
        assert b"Traceback" not in response.data
    if expected == 302 and role is None and route.path not in ("/login", "/logout"):
        assert response.headers["Location"].startswith("/login")


def test_every_route_is_in_the_matrix(app) -> None:  # type: ignore[no-untyped-def]
    """A new route must be added to the matrix above, with the roles it allows."""
    adapter = app.url_map.bind("localhost")
    covered = {(adapter.match(r.path.split("?")[0], method=r.method)[0], r.method) for r in ROUTES}
    served = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served - covered == set()


SECRET = "zebra-quartz-7319"


def test_no_page_or_endpoint_shows_another_users_conversation(  # type: ignore[no-untyped-def]
    client_for, accounts, store_turn
) -> None:
    """A user reads every GET route of the matrix and sees nothing of ``other``'s turns."""
    theirs = store_turn(
        accounts["other"].id,
        question=f"My question {SECRET}",
        answer=f"Their answer {SECRET}",
        title=f"Title {SECRET}",
        flags=["low_retrieval_confidence"],
    )
    mine = store_turn(accounts["user"].id, question="Mine", answer="My answer", title="Mine")
    client = client_for("user")
    for route in ROUTES:
        if route.method != "GET":
            continue
        body = client.get(route.path).get_data(as_text=True)
        assert SECRET not in body, route
    for path in (f"/c/{theirs.conversation_id}", f"/api/conversations/{theirs.conversation_id}"):
        response = client.get(path)
        assert response.status_code == 404 and SECRET not in response.get_data(as_text=True)
    assert SECRET not in client.get("/").get_data(as_text=True)
    assert "My answer" in client.get(f"/c/{mine.conversation_id}").get_data(as_text=True)
    feedback = client.post("/api/feedback", json={"message_id": theirs.answer_id, "rating": -1})
    assert feedback.status_code == 404
    ask = client.post(
        "/api/ask", json={"question": "more?", "conversation_id": theirs.conversation_id}
    )
    assert ask.status_code == 404 and SECRET not in ask.get_data(as_text=True)
