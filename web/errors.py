"""One mapping from failures to answers: JSON for API-style requests, a small page otherwise."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from assistant.errors import AssistantError

logger = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/chat/", "/passage/")
# The OpenAI-compatible API answers every failure in OpenAI's shape, for OpenAI's clients.
OPENAI_PREFIX = "/v1/"
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
}

# Stable, snake_case codes for the HTTP errors the app produces.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
}


def wants_json() -> bool:
    """Whether the failure of this request should be told in JSON."""
    path = request.path
    if path.startswith(JSON_PREFIXES) or path.endswith(".json"):
        return True
    if path.startswith("/review/") and request.method == "POST":
        return True
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def openai_error(status: int, code: str, message: str) -> Response:
    """``{"error": {"message", "type", "code"}}``, as OpenAI answers."""
    default = "server_error" if status >= 500 else "invalid_request_error"
    error: dict[str, Any] = {
        "message": message,
        "type": OPENAI_ERROR_TYPES.get(status, default),
        "code": code,
    }
    if code == "model_not_found":  # exactly as OpenAI answers it
        error |= {"type": "invalid_request_error", "param": "model"}
    response = jsonify(error=error)
    response.status_code = status
    return response


def error_response(
    status: int, code: str, message: str, base: BaseResponse | None = None
) -> Response:
    """``{"error": code, "message": text}`` (OpenAI's shape under /v1/) or the error page,
    keeping ``base``'s headers."""
    if request.path.startswith(OPENAI_PREFIX):
        response = openai_error(status, code, message)
    elif wants_json():
        response = jsonify(error=code, message=message)
    else:
        try:
            html = render_template("error.html", status=status, code=code, message=message)
        except Exception:  # the page itself failed (e.g. no database for the nav): plain text
            logger.exception("Could not render the error page")
            html = f"{status}: {message}"
        response = Response(html, mimetype="text/html")
    if base is not None:  # e.g. the Allow header of a 405
        for name, value in base.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
    response.status_code = status
    return response


def handle_assistant_error(e: AssistantError) -> Response:
    if e.http_status >= 500:
        logger.warning("%s (%s) on %s", type(e).__name__, e.code, request.endpoint)
    return error_response(e.http_status, e.code, str(e) or e.code.replace("_", " "))


def handle_http_error(e: HTTPException) -> Response | HTTPException:
    if e.code is None or e.code < 400:
        return e
    code = "csrf_failed" if isinstance(e, CSRFError) else HTTP_CODES.get(e.code)
    if code is None:
        code = (e.name or "error").lower().replace(" ", "_")
    return error_response(e.code, code, e.description or e.name, base=e.get_response())


def handle_unexpected(e: Exception) -> Response | HTTPException:
    if isinstance(e, HTTPException):
        return handle_http_error(e)
    # No request data in the log: it may hold a user's personal details.
    logger.exception("Unhandled error in %s %s", request.method, request.endpoint)
    return error_response(
        500, "internal_error", "Something went wrong on our side. Try again later."
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(AssistantError, handle_assistant_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
