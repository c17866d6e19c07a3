"""Failures answer in JSON for API-style requests and as a small page otherwise."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from assistant.errors import ModelUnavailable

HUGE = "x" * (1024 * 1024 + 10)


def _is_error_json(response, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert body["message"]


@pytest.mark.parametrize("path", ["/api/nothing-here", "/chat/nothing", "/passage/"])
def test_unknown_api_path_is_json_404(app: Flask, path: str) -> None:
    response = app.test_client().get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    _is_error_json(response, "not_found")


def test_unknown_page_is_an_html_404_unless_json_is_asked_for(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/nothing-here", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert b"Not found" in page.data
    asked = client.get("/nothing-here", headers={"Accept": "application/json"})
    assert asked.status_code == 404
    _is_error_json(asked, "not_found")


@pytest.mark.parametrize(("method", "path"), [("GET", "/chat/ask"), ("DELETE", "/api/ask")])
def test_wrong_method_is_json_405_with_allow(client_for, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").open(path, method=method)
    assert response.status_code == 405
    _is_error_json(response, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("path", ["/api/feedback", "/chat/feedback", "/api/ask", "/chat/ask"])
def test_bad_json_is_400(client_for, path: str) -> None:  # type: ignore[no-untyped-def]
    client = client_for("user")
    for data in ('{"message_id": 1, "rating": ', "[1, 2]", '"text"', ""):
        response = client.post(path, data=data, content_type="application/json")
        assert response.status_code == 400, data
        _is_error_json(response, "invalid_input")


def test_api_accepts_only_json_bodies(client_for) -> None:  # type: ignore[no-untyped-def]
    """The CSRF exemption of /api rests on this: a cross-site form cannot send JSON."""
    client = client_for("user")
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
        response = client.post(
            "/api/feedback", data="message_id=1&rating=1", content_type=content_type
        )
        assert response.status_code == 415, content_type
        _is_error_json(response, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/api/ask", "/chat/ask", "/chat/feedback"])
def test_huge_body_is_413(client_for, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client_for("user").post(path, json={"question": HUGE})
    assert response.status_code == 413
    _is_error_json(response, "payload_too_large")


def test_huge_form_is_413(client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for("admin").post("/admin/users", data={"email": HUGE})
    assert response.status_code == 413


def test_product_errors_keep_their_code_and_status(app: Flask) -> None:
    def unavailable() -> str:
        raise ModelUnavailable("The model file is missing.")

    app.add_url_rule("/api/test-unavailable", view_func=unavailable)
    response = app.test_client().get("/api/test-unavailable")
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "model_unavailable",
        "message": "The model file is missing.",
    }


def test_unexpected_error_is_logged_and_answered_generically(app: Flask, caplog) -> None:  # type: ignore[no-untyped-def]
    def broken() -> str:
        raise RuntimeError("patient Jane Roe, SSN 123-45-6789")

    app.add_url_rule("/api/test-broken", view_func=broken)
    app.add_url_rule("/test-broken-page", view_func=broken)
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="web.errors"):
        response = client.get("/api/test-broken")
    assert response.status_code == 500
    _is_error_json(response, "internal_error")
    text = response.get_data(as_text=True)
    assert "Jane Roe" not in text and "Traceback" not in text
    records = [r for r in caplog.records if r.name == "web.errors"]
    assert records and records[0].exc_info is not None
    assert "Jane Roe" not in records[0].getMessage()

    page = client.get("/test-broken-page", headers={"Accept": "text/html"})
    assert page.status_code == 500
    assert page.mimetype == "text/html"
    assert b"Jane Roe" not in page.data and b"Traceback" not in page.data


def test_forbidden_page_is_html_and_forbidden_json_is_json(client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for("user")
    page = client.get("/admin", headers={"Accept": "text/html"})
    assert page.status_code == 403 and page.mimetype == "text/html"
    api = client.get("/api/jobs")
    assert api.status_code == 403
    _is_error_json(api, "forbidden")


def _is_openai_error(response, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert {"message", "type", "code"} <= set(error) and error["code"] == code, error
    assert error["message"]


def test_v1_answers_every_failure_in_openais_shape(app: Flask, accounts) -> None:  # type: ignore[no-untyped-def]
    """OpenAI's clients read only their own error shape: the HTTP errors and unexpected
    failures of /v1 came in the product's shape (or as an HTML page) once."""
    from assistant.accounts.tokens import create_token

    def broken() -> str:
        raise RuntimeError("patient Jane Roe")

    app.add_url_rule("/v1/test-broken", view_func=broken)
    token, _ = create_token(app.extensions["assistant"].db, accounts["user"].email, "tests")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    unknown = client.get("/v1/nothing-here", headers=auth)
    assert unknown.status_code == 404
    _is_openai_error(unknown, "not_found")
    wrong_method = client.get("/v1/chat/completions", headers=auth)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    _is_openai_error(wrong_method, "method_not_allowed")
    huge = client.post(
        "/v1/chat/completions", data=HUGE, content_type="application/json", headers=auth
    )
    assert huge.status_code == 413
    _is_openai_error(huge, "payload_too_large")
    failed = client.get("/v1/test-broken", headers=auth)
    assert failed.status_code == 500 and "Jane Roe" not in failed.get_data(as_text=True)
    _is_openai_error(failed, "internal_error")
    assert failed.get_json()["error"]["type"] == "server_error"


def test_v1_content_parts_need_text_strings(app: Flask, accounts) -> None:  # type: ignore[no-untyped-def]
    """A text part whose ``text`` is not a string was a 500 (found by Schemathesis)."""
    from assistant.accounts.tokens import create_token

    token, _ = create_token(app.extensions["assistant"].db, accounts["user"].email, "tests")
    client = app.test_client()
    for text in (42, None, ["a"], {"text": "a"}):
        content = [{"type": "text", "text": "What is asthma? "}, {"type": "text", "text": text}]
        response = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": content}]},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 400, (text, response.data)
        _is_openai_error(response, "invalid_input")
