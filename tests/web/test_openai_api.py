"""The OpenAI-compatible /v1 API and /metrics, on the real pipeline (index, SmolLM2, Presidio)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from assistant import registry
from assistant.services import Services
from assistant.storage import models
from assistant.tokens import create_token, revoke_token
from tests.conftest import make_settings
from web import create_app

pytestmark = pytest.mark.slow

QUESTION = "What are the symptoms of asthma?"


@pytest.fixture(scope="module")
def app(indexed_services: Services) -> Iterator[Flask]:
    """An app on the indexed database, index and loaded models."""
    settings = make_settings(
        indexed_services.settings.data_dir,
        database={"url": indexed_services.settings.database.url},
        web={"admin_email": "v1-admin@example.org", "admin_password": "v1-admin-password"},
    )
    services = Services(settings)
    for part in ("embedder", "scrubber", "index", "llm", "metrics"):
        services._parts[part] = getattr(indexed_services, part)
    app = create_app(settings, services)
    app.config.update(TESTING=True)
    yield app


@pytest.fixture(scope="module")
def token(app: Flask) -> str:
    services = app.extensions["assistant"]
    with services.db.session() as session:
        session.add(models.User(email="v1-bot@example.org", password_hash="x"))
    value, _ = create_token(services.db, "v1-bot@example.org", "tests")
    return value


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(question: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": "whatever", "messages": [{"role": "user", "content": question}], **extra}


def test_v1_needs_a_valid_token(app: Flask, token: str) -> None:
    client = app.test_client()
    for headers in ({}, {"Authorization": "Basic abc"}, auth("dat_not-a-token")):
        response = client.post("/v1/chat/completions", json=ask(), headers=headers)
        assert response.status_code == 401
        assert response.json["error"]["type"] == "authentication_error"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    services = app.extensions["assistant"]
    with services.db.session() as session:
        user = session.scalars(
            select(models.User).where(models.User.email == "v1-bot@example.org")
        ).one()
    revoked, info = create_token(services.db, "v1-bot@example.org", "to revoke")
    assert client.get("/v1/models", headers=auth(revoked)).status_code == 200
    revoke_token(services.db, info.id, user.id)
    assert client.get("/v1/models", headers=auth(revoked)).status_code == 401


def test_v1_models_lists_the_registry(app: Flask, token: str) -> None:
    response = app.test_client().get("/v1/models", headers=auth(token))
    assert response.status_code == 200
    data = response.json["data"]
    active = [m for m in data if m["active"]]
    assert len(active) == 1 and active[0]["id"] == "base" and active[0]["object"] == "model"


def test_v1_bad_requests_are_400_in_openai_shape(app: Flask, token: str) -> None:
    client = app.test_client()
    bodies = [
        {},
        {"messages": []},
        {"messages": [{"role": "system", "content": "hi"}]},
        {"messages": [{"role": "user", "content": 5}]},
        ask(stream="yes"),
        ask(""),
    ]
    for body in bodies:
        response = client.post("/v1/chat/completions", json=body, headers=auth(token))
        assert response.status_code == 400, body
        assert response.json["error"]["type"] == "invalid_request_error"
    response = client.post("/v1/chat/completions", data="{", headers=auth(token))
    assert response.status_code == 400


def test_v1_completion_answers_with_citations_and_records_the_version(
    app: Flask, token: str
) -> None:
    response = app.test_client().post("/v1/chat/completions", json=ask(), headers=auth(token))
    assert response.status_code == 200, response.json
    body = response.json
    assert body["object"] == "chat.completion" and body["model"] == "base"
    content = body["choices"][0]["message"]["content"]
    assert content and body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] > 0
    for citation in body["citations"]:
        assert f"[{citation['n']}]" in content and citation["doc_id"].startswith("medquad:")
    services = app.extensions["assistant"]
    active = registry.active_version(services.db)
    with services.db.session() as session:
        stored = session.get(models.Message, body["message_id"])
        assert stored.role == "assistant" and stored.model_version_id == active.id
    metrics = app.test_client().get("/metrics")
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"
    text = metrics.get_data(as_text=True)
    assert 'assistant_ttft_seconds_count{cache="miss"}' in text
    assert "assistant_generated_tokens_total" in text and "assistant_queue_wait_seconds" in text


def parse_stream(body: str) -> list[Any]:
    assert body.endswith("data: [DONE]\n\n")
    events = [block for block in body.split("\n\n") if block]
    assert all(e.startswith("data: ") for e in events)
    return [json.loads(e[len("data: ") :]) for e in events[:-1]]


def test_v1_stream_sends_chunks_then_citations_then_done(app: Flask, token: str) -> None:
    response = app.test_client().post(
        "/v1/chat/completions", json=ask("How is asthma treated?", stream=True), headers=auth(token)
    )
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    chunks = parse_stream(response.get_data(as_text=True))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    last = chunks[-1]
    assert text.strip() and last["choices"][0]["finish_reason"] == "stop"
    assert "citations" in last and last["model"] == "base"


def test_a_full_queue_is_a_503_with_retry_after_and_a_gone_client_frees_the_model(
    app: Flask, token: str
) -> None:
    services = app.extensions["assistant"]
    client: FlaskClient = app.test_client()
    # A client that reads two chunks and goes away: closing the response stops generation.
    response = client.post(
        "/v1/chat/completions",
        json=ask("What causes asthma?", stream=True),
        headers=auth(token),
        buffered=False,
    )
    stream = iter(response.response)
    next(stream), next(stream), next(stream)
    with services.llm.use() as lease:
        scheduler = lease.backend.scheduler
    assert scheduler.busy
    scheduler.max_waiting = 0
    try:
        busy = client.post("/v1/chat/completions", json=ask(), headers=auth(token))
        assert busy.status_code == 503 and busy.headers["Retry-After"].isdigit()
        assert busy.json["error"]["code"] == "server_busy"
    finally:
        scheduler.max_waiting = services.settings.llm.queue_size
    response.close()
    assert not scheduler.busy
