"""Schemathesis against /openapi.json of a live app (werkzeug on a loopback port), signed in
as an admin: zero 5xx, every 4xx is a JSON ``{"error", "message"}``, and every answer
conforms to the model the document gives for it (the models that validate the bodies
describe the answers too: web/openapi.py). Hostile inputs
(huge bodies, bad JSON, markup, unicode, wrong types) on every JSON endpoint get 4xx JSON.

The app has a real database but no index and no loaded models. The two ask endpoints are left
out of the generated cases: Schemathesis's negative cases may break only a header and so pass
a valid question on, which would need the index and the model (503 ``index_not_ready`` here).
They get the hand-written hostile bodies below; tests/web/test_web_fuzz_stream.py runs
Schemathesis on them and on ``/v1/chat/completions`` (which gets only a 401 here: no API token)
against the real index and model, and test_web_end_to_end.py and test_web_browser.py ask real
questions.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from werkzeug.serving import make_server

from tests.web.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

ASK_OPERATIONS = {("POST", "/api/ask"), ("POST", "/chat/ask")}
EXAMPLES = 12


@pytest.fixture
def live(app: Flask, accounts) -> Iterator[tuple[str, requests.Session]]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    session = requests.Session()
    response = session.post(
        url + "/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=30
    )
    assert response.status_code == 200 and "Sign out" in response.text
    try:
        yield url, session
    finally:
        server.shutdown()
        thread.join(timeout=10)


# The readiness probe answers 503 with its own report while the models are not loaded (never,
# in this app): its documented answer, checked against its schema by ``conforms``.
PROBES = {"/api/ready"}


def _check(response: Any) -> None:
    if response.status_code == 503 and urlsplit(response.request.url).path in PROBES:
        assert response.json()["ready"] is False
        return
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and response.request.method != "HEAD":
        body = response.json()
        if "/v1/" in response.request.url:  # OpenAI's error shape, for OpenAI's clients
            assert set(body["error"]) >= {"message", "type", "code"}, body
            return
        assert set(body) >= {"error", "message"}, body
        assert isinstance(body["error"], str) and isinstance(body["message"], str)


def conforms(case: Any, response: Any) -> None:
    """A JSON answer matches the model documented for its status (an event stream is checked
    event by event: tests/web/test_web_fuzz_stream.py)."""
    from schemathesis.specs.openapi.checks import response_schema_conformance

    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return
    case.validate_response(response, checks=[response_schema_conformance])


def test_schemathesis_finds_no_server_error(live) -> None:  # type: ignore[no-untyped-def]
    import schemathesis
    from schemathesis import GenerationMode

    url, session = live
    schema = schemathesis.openapi.from_url(url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19
    tried = 0
    for operation in operations:
        if (operation.method.upper(), operation.path) in ASK_OPERATIONS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                response = case.call(base_url=url, session=session, timeout=30)
                _check(response)
                conforms(case, response)

            try:
                run()
            except Unsatisfiable:  # e.g. no way to break the schema of a GET without inputs
                assert mode == GenerationMode.NEGATIVE, operation.label
                continue
            tried += 1
    assert tried >= 25, tried
    # Still signed in as the admin: nothing the fuzzing did locked the account out.
    assert session.get(url + "/api/admin/users", timeout=30).status_code == 200


JSON_ENDPOINTS = [
    ("POST", "/api/ask"),
    ("POST", "/api/feedback"),
    ("POST", "/chat/ask"),
    ("POST", "/chat/feedback"),
    ("POST", "/api/admin/reindex"),
    ("PATCH", "/api/admin/users/1"),
    ("POST", "/review/1"),
]

HOSTILE = {
    "bad json": ('{"question": "unterminated', "application/json"),
    "json array": ("[1, 2, 3]", "application/json"),
    "json string": ('"<script>alert(1)</script>"', "application/json"),
    "wrong types": (
        '{"question": 42, "message_id": "x", "rating": true, "collection": [], '
        '"role": 7, "active": "yes", "action": {"a": 1}}',
        "application/json",
    ),
    "markup and unicode": (
        '{"question": "", "message_id": "\\u202e<script>\\ud83d\\ude00", '
        '"rating": "<img src=x onerror=alert(1)>", "collection": "\\u0000", '
        '"role": "<b>admin</b>", "action": "\\u00e9\\u0301"}',
        "application/json",
    ),
    "lone surrogate": (
        '{"question": "\\ud800", "message_id": 1, "rating": 1, "correction": "\\udfff", '
        '"collection": "\\ud800", "role": "\\ud800", "action": "\\ud800"}',
        "application/json",
    ),
    "not json": ("question=hi", "application/x-www-form-urlencoded"),
    "huge body": ('{"question": "' + "a" * (2 * 1024 * 1024) + '"}', "application/json"),
    "deep nesting": ("[" * 5000 + "]" * 5000, "application/json"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_get_json_4xx(live, name: str) -> None:  # type: ignore[no-untyped-def]
    url, session = live
    body, content_type = HOSTILE[name]
    for method, path in JSON_ENDPOINTS:
        if path.startswith("/review/") and not content_type.endswith("json"):
            continue  # the review form posts there: tests/web/test_web_review.py
        response = session.request(
            method,
            url + path,
            data=body.encode("utf-8", "surrogatepass"),
            headers={"Content-Type": content_type, "Accept": "application/json"},
            timeout=30,
        )
        assert 400 <= response.status_code < 500, (method, path, response.status_code)
        _check(response)
        # Nothing sent is echoed back as markup.
        assert "<script>" not in response.text and "<img" not in response.text
    if name == "huge body":
        assert response.status_code == 413


def test_query_strings_and_paths_are_validated(live) -> None:  # type: ignore[no-untyped-def]
    url, session = live
    for path in (
        "/passage/x?start=-1&end=5",
        "/passage/x?start=a&end=5",
        "/passage/%00?start=0&end=99999999999999999999999",
        "/api/admin/documents?page=-3",
        "/api/admin/documents?page=abc",
        "/api/admin/quality?days=0",
        "/api/admin/quality?days=1000000",
        "/api/admin/audit?action=" + "x" * 5000,
        "/api/conversations/99999999999999999999999999",
        "/api/jobs/-1",
    ):
        response = session.get(url + path, headers={"Accept": "application/json"}, timeout=30)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        _check(response)
