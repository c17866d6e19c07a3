"""A question asked through the web app, answered by the real index and SmolLM2 in llama.cpp."""

from __future__ import annotations

import json
import re

import pytest
from flask.testing import FlaskClient

from assistant.accounts.users import create_user
from tests.web.conftest import provisioned_app

pytestmark = pytest.mark.slow


def parse_sse(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def csrf_token(html: bytes) -> str:
    match = re.search(rb'name="csrf[-_]token"[^>]*(?:content|value)="([^"]+)"', html)
    assert match, html[:500]
    return match.group(1).decode()


def sign_in(client: FlaskClient, email: str, password: str) -> str:
    token = csrf_token(client.get("/login").data)
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302
    return csrf_token(client.get("/").data)


@pytest.fixture(scope="module")
def app(indexed_services):
    app = provisioned_app(services=indexed_services)
    app.config.update(TESTING=True)
    db = indexed_services.db
    create_user(db, "asker@example.org", "asker-password", "user")
    create_user(db, "checker@example.org", "checker-password", "reviewer")
    return app


def test_a_user_asks_sees_a_cited_answer_and_gives_feedback(app) -> None:
    client = app.test_client()
    token = sign_in(client, "asker@example.org", "asker-password")
    question = "What are the symptoms of type 2 diabetes?"
    response = client.post("/chat/ask", json={"question": question}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = parse_sse(response.get_data(as_text=True))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "done" and "token" in kinds
    done = events[-1][1]
    sources = events[0][1]["citations"]
    assert any("Diabetes" in s["title"] for s in sources)
    streamed = "".join(data["text"] for kind, data in events if kind == "token")
    assert streamed.strip()

    # Every citation opens its exact passage.
    for citation in done["citations"] or sources:
        view = client.get(
            f"/passage/{citation['doc_id']}",
            query_string={"start": citation["start"], "end": citation["end"]},
        )
        assert view.status_code == 200
        assert view.json["title"] == citation["title"] and view.json["passage"]

    # The conversation is listed and resumable.
    listing = client.get("/api/conversations").json["conversations"]
    assert done["conversation_id"] in [c["id"] for c in listing]
    page = client.get(f"/c/{done['conversation_id']}")
    assert page.status_code == 200

    feedback = client.post(
        "/chat/feedback",
        json={
            "message_id": done["message_id"],
            "rating": -1,
            "correction": "Increased thirst, frequent urination and blurred vision.",
            "reason": "incomplete",
        },
        headers={"X-CSRFToken": token},
    )
    assert feedback.status_code == 201

    reviewer = app.test_client()
    sign_in(reviewer, "checker@example.org", "checker-password")
    queue = reviewer.get("/review")
    assert queue.status_code == 200 and b"thumbs_down" in queue.data.replace(b"-", b"_")


def test_bad_questions_get_a_json_4xx_before_any_stream(app) -> None:
    client = app.test_client()
    token = sign_in(client, "asker@example.org", "asker-password")
    for body in (
        {"question": ""},
        {"question": "x" * 5000},
        {"question": 42},
        {"question": "asthma?", "collection": "astrology"},
        {},
    ):
        response = client.post("/chat/ask", json=body, headers={"X-CSRFToken": token})
        assert 400 <= response.status_code < 500, body
        assert response.is_json and set(response.json) == {"error", "message"}
    no_token = client.post("/chat/ask", json={"question": "What is asthma?"})
    assert no_token.status_code == 400
