"""The OpenAI-compatible /v1 API and /metrics, on the real pipeline (index, SmolLM2, Presidio)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from assistant.accounts.tokens import create_token, revoke_token
from assistant.llm import registry
from assistant.services import Services
from assistant.storage import models
from tests.conftest import make_settings
from tests.web.conftest import provisioned_app

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
    parts = ("embedder", "scrubber", "index", "llm", "metrics")
    services = Services(settings, {part: getattr(indexed_services, part) for part in parts})
    app = provisioned_app(settings, services)
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
    return {"model": "assistant", "messages": [{"role": "user", "content": question}], **extra}


def active_name(app: Flask) -> str:
    active = registry.active_version(app.extensions["assistant"].db)
    assert active is not None
    return active.name


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
    assert len(active) == 1 and active[0]["id"] == active_name(app)
    assert active[0]["object"] == "model"


def test_v1_bad_requests_are_400_in_openai_shape(app: Flask, token: str) -> None:
    client = app.test_client()
    bodies = [
        {},
        {"messages": []},
        {"messages": [{"role": "system", "content": "hi"}]},
        {"messages": [{"role": "user", "content": 5}]},
        ask(stream="yes"),
        ask(""),
        ask(max_tokens=0),
        ask(max_tokens="5"),
        ask(temperature=3),
        ask(stop=[1]),
        ask(stop=["a", "b", "c", "d", "e"]),
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "wizard", "content": "hi"}]},
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
    assert body["object"] == "chat.completion" and body["model"] == active_name(app)
    content = body["choices"][0]["message"]["content"]
    assert content and body["choices"][0]["finish_reason"] in ("stop", "length")
    assert body["usage"]["completion_tokens"] > 0 and body["usage"]["prompt_tokens"] > 100
    assert body["origin"] in ("model", "evidence") and body["abstained"] is False
    assert len(body["sources"]) >= len(body["citations"]) > 0
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
    assert text.strip() and last["choices"][0]["finish_reason"] in ("stop", "length")
    assert "citations" in last and "sources" in last and last["model"] == active_name(app)


def test_a_full_queue_is_a_503_with_retry_after_and_a_gone_client_frees_the_model(
    app: Flask, token: str
) -> None:
    services = app.extensions["assistant"]
    client: FlaskClient = app.test_client()
    # A client that reads the first sentence and goes away: closing the response stops
    # generation. The first sentence is sent when the second begins, so the model is still
    # busy then, unless the whole answer was one sentence: another question is tried.
    response = None
    for question in ("What causes asthma?", "How is asthma treated?", "What is diabetes?"):
        response = client.post(
            "/v1/chat/completions",
            json=ask(question, stream=True, max_tokens=400),
            headers=auth(token),
            buffered=False,
        )
        stream = iter(response.response)
        next(stream), next(stream)
        with services.llm.use() as lease:
            scheduler = lease.backend.scheduler
        if scheduler.busy:
            break
        response.close()
    assert response is not None and scheduler.busy
    scheduler.max_waiting = 0
    try:
        busy = client.post("/v1/chat/completions", json=ask(), headers=auth(token))
        assert busy.status_code == 503 and busy.headers["Retry-After"].isdigit()
        assert busy.json["error"]["code"] == "server_busy"
    finally:
        scheduler.max_waiting = services.settings.llm.queue_size
    response.close()
    assert not scheduler.busy


@pytest.fixture(scope="module")
def live_v1(app: Flask, token: str) -> Iterator[Any]:
    """The app on a real loopback server, and the official OpenAI client pointed at it."""
    import threading

    import openai
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key=token, max_retries=0
    )
    try:
        yield client
    finally:
        server.shutdown()


def test_the_openai_client_gets_a_follow_up_answered_about_the_conversation(live_v1) -> None:
    first = live_v1.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "What is asthma?"}]
    )
    history = [
        {"role": "user", "content": "What is asthma?"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "What are its symptoms?"},
    ]
    reply = live_v1.chat.completions.create(model="assistant", messages=history)
    extra = reply.model_extra or {}
    asthma_pages = {s["doc_id"] for s in extra["sources"] if "asthma" in s["title"].lower()}
    assert asthma_pages, [s["title"] for s in extra["sources"]]
    assert {c["doc_id"] for c in extra["citations"]} <= {s["doc_id"] for s in extra["sources"]}
    assert reply.usage is not None and reply.usage.prompt_tokens > 100


def test_the_openai_client_max_tokens_bounds_the_stream(live_v1) -> None:
    stream = live_v1.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": "How is asthma treated?"}],
        max_tokens=12,
        stream=True,
    )
    chunks = list(stream)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason]
    usage = (chunks[-1].model_extra or {}).get("usage") or {}
    assert usage.get("completion_tokens", 0) <= 12
    assert finish and finish[-1] in ("length", "stop")
    assert len(chunks) < 20  # sentences, each checked, not one chunk per token


def test_the_openai_client_sees_an_unknown_model_as_model_not_found(live_v1) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as raised:
        live_v1.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "What is asthma?"}]
        )
    assert raised.value.code == "model_not_found"


def test_a_request_may_name_another_registered_version(app: Flask, token: str) -> None:
    services = app.extensions["assistant"]
    versions = registry.list_versions(services.db)
    base = next(v for v in versions if v.kind.value == "base")
    body = ask(model=base.name)
    response = app.test_client().post("/v1/chat/completions", json=body, headers=auth(token))
    assert response.status_code == 200, response.json
    assert response.json["model"] == base.name
