"""One declaration per HTTP boundary: views name their pydantic models with ``@operation``;
the same models validate the bodies and make the OpenAPI 3.1 document at /openapi.json.

``@operation`` (under the route and ``role_required`` decorators) validates the JSON body
(``body=``) and the query string (``query=``) and hands the view the models as ``body`` and
``query``; bad input is an ``InvalidInput`` (400 in the product's error shape, OpenAI's under
/v1). ``collect`` walks the app's URL map and writes every documented view into the document,
so a new blueprint needs no edit here. Why in-house and not a library: docs/architecture.md,
"HTTP schemas".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from assistant.errors import InvalidInput
from web.common import MAX_ID, json_body
from web.schemas import Error

bp = Blueprint("openapi", __name__)

F = TypeVar("F", bound=Callable[..., Any])
COMPONENTS = "#/components/schemas/{model}"

ERROR_TEXTS = {
    400: "Invalid input (error `invalid_input`, `bad_request` or `csrf_failed`)",
    401: "Not signed in",
    403: "Signed in without the needed role, or a forbidden conversation",
    404: "Not found (also: another user's conversation or message)",
    409: "Conflict",
    413: "Body over 1 MiB, or prompt too long for the model (`context_overflow`)",
    415: "Not JSON",
    429: "Too many requests (rate limit); retry after the `Retry-After` seconds",
    500: "Unexpected failure (generic message)",
    503: "Model or search index not ready (`model_unavailable`, `index_not_ready`)",
}


@dataclass(frozen=True)
class Reply:
    """One documented answer: a JSON ``model``, or a ``stream`` of server-sent events."""

    description: str
    model: type[BaseModel] | None = None
    stream: str | None = None  # the events, in words (the schema is a string)
    example: str | None = None


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    replies: Mapping[int, Reply] = field(default_factory=dict)
    errors: Mapping[int, str] = field(default_factory=dict)
    error_model: type[BaseModel] = Error
    description: str | None = None
    security: list[dict[str, list[str]]] | None = None  # None: the document's default
    csrf: bool = False  # needs the X-CSRFToken header
    form: bool = False  # a form post may send the body too (text fields; blanks are absent)
    tags: tuple[str, ...] = ()


def operation(
    summary: str,
    *,
    errors: tuple[int, ...] | Mapping[int, str] = (),
    ok: Mapping[int, Reply] | None = None,
    **fields: Any,
) -> Callable[[F], F]:
    """Validate the view's ``body``/``query`` models and describe it in /openapi.json."""
    texts = errors if isinstance(errors, Mapping) else {s: ERROR_TEXTS[s] for s in errors}
    op = Operation(summary, replies=ok or {}, errors=texts, **fields)

    def decorate(view: F) -> F:
        @wraps(view)
        def validated(*args: Any, **kwargs: Any) -> Any:
            if op.body is not None and op.form and not request.is_json:
                form = {k: v for k, v in request.form.items() if v != "" and k != "csrf_token"}
                kwargs["body"] = validate(op.body, form, strict=False)
            elif op.body is not None:
                kwargs["body"] = validate(op.body, json_body())
            if op.query is not None:
                kwargs["query"] = validate(op.query, request.args.to_dict(), strict=False)
            return view(*args, **kwargs)

        validated.openapi = op  # type: ignore[attr-defined]  # read by collect()
        return validated  # type: ignore[return-value]  # called as the view: same arguments

    return decorate


M = TypeVar("M", bound=BaseModel)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


def validate(model: type[M], data: Any, strict: bool = True) -> M:
    """``data`` as ``model``; InvalidInput naming the first wrong fields otherwise. Strict for
    JSON (no "1" for 1, no true for 1); a query string or a form is text, so not there."""
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as e:
        raise InvalidInput(_message(e)) from None


def _message(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False, include_input=False)[:3]:
        # A key from the body is named only when it looks like a name: nothing is echoed.
        where = ".".join(
            str(p) if isinstance(p, int) or _NAME.match(p) else "…" for p in item["loc"]
        )
        parts.append(f"'{where}': {item['msg']}" if where else str(item["msg"]))
    return "; ".join(parts) + "."


class _Schemas(GenerateJsonSchema):
    """pydantic's JSON Schema without a title on every field (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _json(model: type[BaseModel] | str) -> dict[str, Any]:
    name = model if isinstance(model, str) else model.__name__
    return {"application/json": {"schema": {"$ref": COMPONENTS.format(model=name)}}}


def _responses(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, reply in op.replies.items():
        answer: dict[str, Any] = {"description": reply.description}
        if reply.model is not None:
            answer["content"] = _json(reply.model)
        if reply.stream is not None:
            stream: dict[str, Any] = {"schema": {"type": "string", "description": reply.stream}}
            if reply.example is not None:
                stream["example"] = reply.example
            answer.setdefault("content", {})["text/event-stream"] = stream
        out[str(status)] = answer
    for status, text in op.errors.items():
        out[str(status)] = {"description": text, "content": _json(op.error_model)}
    return out


def _parameters(op: Operation, rule_path: str, converters: dict[str, str]) -> list[Any]:
    params: list[dict[str, Any]] = []
    for name in re.findall(r"{([a-z_]+)}", rule_path):
        integer = converters.get(name) == "int"
        kind = {"type": "integer", "minimum": 0, "maximum": MAX_ID} if integer else {}
        params.append(
            {"name": name, "in": "path", "required": True, "schema": kind or {"type": "string"}}
        )
    if op.query is not None:
        schema = op.query.model_json_schema(schema_generator=_Schemas)
        for name, prop in schema["properties"].items():
            required = name in schema.get("required", [])
            params.append({"name": name, "in": "query", "required": required, "schema": prop})
    if op.csrf:
        params.append(
            {
                "name": "X-CSRFToken",
                "in": "header",
                "required": True,
                "description": 'The token from the page\'s `<meta name="csrf-token">`.',
                "schema": {"type": "string"},
            }
        )
    return params


def _path_item(op: Operation, rule_path: str, converters: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"summary": op.summary, "responses": _responses(op)}
    if op.description:
        item["description"] = op.description
    if op.tags:
        item["tags"] = list(op.tags)
    if op.security is not None:
        item["security"] = op.security
    parameters = _parameters(op, rule_path, converters)
    if parameters:
        item["parameters"] = parameters
    if op.body is not None:
        item["requestBody"] = {"required": True, "content": _json(op.body)}
    return item


def operations(app: Flask) -> list[tuple[str, str, Operation, dict[str, str]]]:
    """(OpenAPI path, method, operation, path converters) of every documented view."""
    found = []
    for rule in app.url_map.iter_rules():
        op = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if op is None:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        converters = {name: kind for kind, name in re.findall(r"<([a-z]+):([a-z_]+)>", rule.rule)}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((path, method.lower(), op, converters))
    return found


def settings_schemas(app: Flask) -> dict[str, Any]:
    """The components whose bounds this app's settings set (the models refer to them)."""
    services = app.extensions.get("assistant")
    settings = services.settings if services is not None else None
    collections = list(settings.collections) if settings is not None else []
    return {
        "Question": {
            "type": "string",
            "minLength": 1,
            # The setting safety.max_question_chars (the core checks it: the model cannot).
            "maxLength": settings.safety.max_question_chars if settings is not None else 4000,
            "description": "Surrounding space and control characters are removed first; "
            "what is left must not be empty.",
        },
        "Collection": {
            "type": ["string", "null"],
            "enum": [*collections, "", None],
            "description": "Search only this collection; absent, null or empty: all of them.",
        },
    }


def _refer_to_settings(schema: Any) -> Any:
    """Each ``{"x-setting": name}`` made a reference to that settings component."""
    if isinstance(schema, list):
        return [_refer_to_settings(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _refer_to_settings(value) for key, value in schema.items()}
    name = out.pop("x-setting", None)
    return {"$ref": COMPONENTS.format(model=name), **out} if name else out


INFO = {
    "title": "Domain assistant",
    "version": "0.1.0",
    "description": "Medical and legal questions answered from a document corpus, with "
    "citations. Authentication: the session cookie set by `POST /login`. The `/api` "
    "endpoints need no CSRF token but accept only `application/json` bodies; the "
    "`/chat` endpoints need the `X-CSRFToken` header. Errors are "
    '`{"error": code, "message": text}`.',
}
SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": "session"},
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`assistant create-token`).",
    },
}


def collect(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every view of ``app`` that ``@operation`` describes."""
    paths: dict[str, dict[str, Any]] = {}
    requests: set[type[BaseModel]] = set()
    replies: set[type[BaseModel]] = {Error}
    for path, method, op, converters in operations(app):
        paths.setdefault(path, {})[method] = _path_item(op, path, converters)
        requests.update([op.body] if op.body else [])
        replies.update([op.error_model, *(r.model for r in op.replies.values() if r.model)])
    modes: list[tuple[type[BaseModel], Any]] = [
        *((m, "validation") for m in sorted(requests, key=lambda m: m.__name__)),
        *((m, "serialization") for m in sorted(replies, key=lambda m: m.__name__)),
    ]
    _, top = models_json_schema(modes, ref_template=COMPONENTS, schema_generator=_Schemas)
    schemas = _refer_to_settings({**top.get("$defs", {}), **settings_schemas(app)})
    return {
        "openapi": "3.1.0",
        "info": INFO,
        "servers": [{"url": "/"}],
        "security": [{"session": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@bp.get("/openapi.json")
def document() -> Response:
    # The real app behind the proxy (werkzeug types current_app as the Flask class).
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    cached = app.extensions.get("openapi_document")
    if cached is None:  # blueprints are all registered before the first request
        cached = app.extensions["openapi_document"] = collect(app)
    return jsonify(cached)
