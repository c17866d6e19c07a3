"""Schemathesis on the asking endpoints, against a live app (werkzeug on a loopback port) on
the real index, SmolLM2 in llama.cpp and Presidio: zero 5xx, every 4xx a JSON error in the
endpoint's shape, and every answer well-formed. A stream's headers go out before the answer
is made, so a failure there is told as a last event: an ``internal_error`` event is a 500
hidden in a 200, and fails here like one.

The operations: ``POST /chat/ask`` (server-sent events), ``POST /v1/chat/completions``
(events with ``stream: true``, else JSON; bearer API token) and ``POST /api/ask`` (the same
answer as one JSON object). Each gets the examples its schema gives (real questions: they
reach the model), then generated cases in positive and negative modes; every JSON answer
and error conforms to the model /openapi.json gives for it.
tests/web/test_web_fuzz.py fuzzes every other operation on an app without index or model.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from werkzeug.serving import make_server

from assistant.accounts.tokens import create_token
from assistant.accounts.users import create_user
from assistant.services import Services
from tests.conftest import make_settings
from tests.web.conftest import provisioned_app
from tests.web.test_web_end_to_end import csrf_token
from tests.web.test_web_fuzz import _check, conforms
from tests.web.test_web_stream import parse_sse

pytestmark = pytest.mark.slow

ASK_OPERATIONS = [("POST", "/api/ask"), ("POST", "/chat/ask"), ("POST", "/v1/chat/completions")]
EXAMPLES = 8  # generated cases per operation and mode
MAX_TOKENS = 24  # the app's cap on an answer: the fuzzing is about the stream, not the prose
EMAIL, PASSWORD = "fuzz-asker@example.org", "fuzz-asker-password"
ANSWER_KEYS = {
    "message_id",
    "conversation_id",
    "answer",
    "citations",
    "sources",
    "flagged",
    "abstained",
    "origin",
}
ANSWERED = ("model", "evidence")  # origins of an answer the model's generation produced


@dataclass
class Live:
    url: str
    session: requests.Session
    csrf_token: str
    api_token: str
    # (path, status) of every response; (path, "stream" or "json") of each 200 whose answer
    # the model wrote (checked, or its evidence quoted when it could not be shown).
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    answered: Counter[tuple[str, str]] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def live(indexed_services: Services) -> Iterator[Live]:
    """The app on the indexed database, index and loaded models, served on a loopback port,
    with a signed-in user (CSRF on, as in a browser) and that user's API token."""
    settings = make_settings(
        indexed_services.settings.data_dir,
        database={"url": indexed_services.settings.database.url},
        llm={"max_tokens": MAX_TOKENS},
        # The answer cache is in the database the other slow tests share: answers made here
        # with a 24-token cap must not be replayed to them (nor theirs to these cases).
        serving={"cache": "off"},
        web={
            "admin_email": "fuzz-admin@example.org",
            "admin_password": "fuzz-admin-password",
            "ask_rate_limit": "10000 per minute",
        },
    )
    parts = ("embedder", "scrubber", "index", "llm", "metrics")
    services = Services(settings, {part: getattr(indexed_services, part) for part in parts})
    app = provisioned_app(settings, services)
    create_user(services.db, EMAIL, PASSWORD, "user")
    api_token, _ = create_token(services.db, EMAIL, "fuzzing")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    session = requests.Session()
    form = session.get(url + "/login", timeout=30).content
    signed_in = session.post(
        url + "/login",
        data={"email": EMAIL, "password": PASSWORD, "csrf_token": csrf_token(form)},
        timeout=30,
    )
    assert signed_in.status_code == 200 and "Sign out" in signed_in.text
    try:
        yield Live(url, session, csrf_token(signed_in.content), api_token)
    finally:
        server.shutdown()
        thread.join(timeout=10)


# ---- what a well-formed answer is ---------------------------------------------------------------
def check_error_event(data: Any) -> None:
    assert set(data) == {"error", "message"}, data
    assert isinstance(data["error"], str) and isinstance(data["message"], str), data
    assert data["error"] != "internal_error", data


def check_answer(answer: Any) -> None:
    assert set(answer) >= ANSWER_KEYS, answer
    assert isinstance(answer["answer"], str) and isinstance(answer["citations"], list)


def check_chat_stream(body: str) -> dict[str, Any] | None:
    """``sources``, ``token``s, then one last ``done`` or ``error``; the done event's data."""
    events = parse_sse(body)  # strict: one event and one data line per block
    kinds = [kind for kind, _ in events]
    assert set(kinds) <= {"sources", "token", "done", "error"}, kinds
    assert kinds[-1] in ("done", "error") and kinds.count("done") + kinds.count("error") == 1
    if "sources" in kinds:  # first, once; an error may come before it
        assert kinds.count("sources") == 1 and kinds[0] == "sources", kinds
    for kind, data in events:
        if kind == "sources":
            assert isinstance(data["citations"], list), data
        elif kind == "token":
            assert set(data) == {"text"} and isinstance(data["text"], str), data
    kind, data = events[-1]
    if kind == "error":
        check_error_event(data)
        return None
    check_answer(data)
    return data  # type: ignore[no-any-return]


def check_openai_stream(body: str) -> dict[str, Any] | None:
    """``data: <chunk>`` blocks, ending with ``data: [DONE]``; the last chunk, if no error."""
    assert body.endswith("data: [DONE]\n\n"), body[-300:]
    blocks = body[:-2].split("\n\n")
    assert blocks.count("data: [DONE]") == 1
    payloads = []
    for block in blocks[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block[:300]
        payloads.append(json.loads(block.removeprefix("data: ")))
    errors = [p for p in payloads if "error" in p]
    for error in errors:
        assert set(error["error"]) >= {"message", "type", "code"}, error
        assert error["error"]["code"] != "internal_error", error
    if errors:
        assert payloads[-1] is errors[-1] and len(errors) == 1, payloads[-2:]
        return None
    chunks = payloads
    assert all(c["object"] == "chat.completion.chunk" for c in chunks), chunks[:2]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    for chunk in chunks[1:-1]:
        delta = chunk["choices"][0]["delta"]
        assert set(delta) == {"content"} and isinstance(delta["content"], str), chunk
        assert chunk["choices"][0]["finish_reason"] is None
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] in ("stop", "length"), last
    assert {"citations", "sources", "abstained", "usage"} <= set(last), last
    return last  # type: ignore[no-any-return]


def check(live: Live, path: str, case: Any, response: Any) -> None:
    _check(response)  # < 500; a 4xx is a JSON error in the endpoint's shape
    conforms(case, response)  # a JSON answer or error matches the model documented for it
    live.statuses[(path, response.status_code)] += 1
    if response.status_code != 200:
        return
    streamed = path == "/chat/ask" or (
        path == "/v1/chat/completions" and isinstance(case.body, dict) and case.body.get("stream")
    )
    mimetype = response.headers["content-type"][0].split(";")[0]
    assert mimetype == ("text/event-stream" if streamed else "application/json"), mimetype
    answer: dict[str, Any] | None
    if path == "/chat/ask":
        answer = check_chat_stream(response.text)
    elif path == "/api/ask":
        answer = response.json()
        check_answer(answer)
    elif streamed:
        answer = check_openai_stream(response.text)
    else:
        answer = response.json()
        assert answer["object"] == "chat.completion", answer
        assert isinstance(answer["choices"][0]["message"]["content"], str), answer
    if answer is not None and answer.get("origin") in ANSWERED:
        live.answered[(path, "stream" if streamed else "json")] += 1


# ---- the fuzzing -------------------------------------------------------------------------------
def user_message_last(case: Any) -> Any:
    """A /v1 conversation ends with the user's question, a rule JSON Schema cannot state:
    without it most positive cases were refused for that alone, and never reached the model.
    The schema's ``contains`` makes sure there is a user message to move."""
    messages = case.body.get("messages") if isinstance(case.body, dict) else None
    if isinstance(messages, list):
        users = [
            i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"
        ]
        if users and users[-1] != len(messages) - 1:
            messages.append(messages.pop(users[-1]))
    return case


def fuzz(live: Live, path: str, strategy: Any, count: int) -> None:
    """``count`` cases from ``strategy``, each sent and its answer checked."""

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=live.url, session=live.session, timeout=120)
        check(live, path, case, response)

    run()


def test_schemathesis_finds_no_server_error_in_answers_or_streams(live: Live) -> None:
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    # Signed in, with a valid CSRF token and API token: the cases test the answers, not the
    # sign-in (Schemathesis would otherwise make up the session cookie and the tokens too).
    fixed = {
        "headers": {"X-CSRFToken": live.csrf_token, "Authorization": f"Bearer {live.api_token}"},
        "cookies": {"session": live.session.cookies["session"]},
    }
    for method, path in ASK_OPERATIONS:
        operation = schema[path][method]
        examples = operation.get_strategies_from_examples(**fixed)
        assert examples, path  # the schema's real questions: each is asked once
        positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE, **fixed)
        negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, **fixed)
        phases = [("example", example, 1) for example in examples] + [
            ("positive", positive.map(user_message_last), EXAMPLES),
            ("negative", negative, EXAMPLES),
        ]
        for phase, strategy, count in phases:
            try:
                fuzz(live, path, strategy, count)
            except Unsatisfiable:
                pytest.fail(f"no {phase} case for {method} {path}")

    print(sorted(live.statuses.items()), sorted(live.answered.items()))  # shown with -s
    # Real questions reached the model and came back, streamed and whole, as checked answers.
    assert live.answered[("/chat/ask", "stream")] > 0, live.answered
    assert live.answered[("/v1/chat/completions", "stream")] > 0, live.answered
    assert live.answered[("/v1/chat/completions", "json")] > 0, live.answered
    assert live.answered[("/api/ask", "json")] > 0, live.answered
