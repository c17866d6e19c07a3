"""The hand-written OpenAPI 3.1 description of the JSON endpoints, served at /openapi.json.

Each blueprint module may document its own endpoints: a module-level
``OPENAPI_PATHS: dict[str, dict]`` (OpenAPI 3.1 path items, keyed by path) and, if it needs
them, ``OPENAPI_SCHEMAS: dict[str, dict]`` (component schemas) and
``OPENAPI_SECURITY_SCHEMES: dict[str, dict]``. ``document()`` merges those of every
registered blueprint, so a new blueprint needs no edit here.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from web.common import MAX_ID

bp = Blueprint("openapi", __name__)


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema (for other modules' ``OPENAPI_PATHS``)."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response with a JSON body of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Any]:
    """The ``Error`` responses for these statuses."""
    texts = {
        400: "Invalid input (error `invalid_input`, `bad_request` or `csrf_failed`)",
        401: "Not signed in",
        403: "Signed in without the needed role, or a forbidden conversation",
        404: "Not found (also: another user's conversation or message)",
        409: "Conflict",
        429: "Too many requests (rate limit); retry after the `Retry-After` seconds",
        413: "Body over 1 MiB, or prompt too long for the model (`context_overflow`)",
        415: "Not JSON",
        500: "Unexpected failure (generic message)",
        503: "Model or search index not ready (`model_unavailable`, `index_not_ready`)",
    }
    return {str(s): json_response(ref("Error"), texts[s]) for s in statuses}


_CSRF_HEADER = {
    "name": "X-CSRFToken",
    "in": "header",
    "required": True,
    "description": 'The token from the page\'s `<meta name="csrf-token">`.',
    "schema": {"type": "string"},
}

_DATETIME = {"type": "string", "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "A stable code, e.g. `not_found`."},
            "message": {"type": "string", "description": "Human readable."},
        },
    },
    "AskRequest": {
        "type": "object",
        "required": ["question"],
        "properties": {
            "question": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4000,  # the setting safety.max_question_chars: see collect()
                "description": "Surrounding space and control characters are removed first; "
                "what is left must not be empty.",
            },
            "conversation_id": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_ID,
                "description": "Continue this conversation (one of the user's own); absent "
                "or null starts a new one.",
            },
            "collection": ref("Collection"),
        },
        "examples": [
            {"question": "What are the symptoms of asthma?"},
            {"question": "How is type 2 diabetes treated?", "collection": "medical"},
        ],
    },
    "Collection": {
        "type": ["string", "null"],
        "enum": ["medical", "legal", "", None],  # the setting collections: see collect()
        "description": "Search only this collection; absent, null or empty: all of them.",
    },
    "Citation": {
        "type": "object",
        "required": ["n", "doc_id", "title", "start", "end"],
        "properties": {
            "n": {"type": "integer", "description": "The number used as `[n]` in the answer."},
            "doc_id": {"type": "string"},
            "title": {"type": "string"},
            "start": {"type": "integer", "description": "Character offset in the document."},
            "end": {"type": "integer"},
            "score": {"type": "number"},
            "source_url": {"type": "string"},
            "collection": {"type": "string"},
        },
    },
    "Answer": {
        "type": "object",
        "description": "The stored answer (the `done` event of the stream).",
        "required": [
            "message_id",
            "conversation_id",
            "answer",
            "citations",
            "sources",
            "flagged",
            "abstained",
            "origin",
        ],
        "properties": {
            "message_id": {"type": "integer"},
            "conversation_id": {"type": "integer"},
            "answer": {"type": "string"},
            "citations": {"type": "array", "items": ref("Citation")},
            "sources": {
                "type": "array",
                "items": ref("Citation"),
                "description": "Every source given to the model, cited or not.",
            },
            "abstained": {
                "type": "boolean",
                "description": "The product said the sources do not answer (and cites nothing).",
            },
            "origin": {
                "type": "string",
                "enum": ["model", "evidence", "none"],
                "description": "model: the model's answer, each sentence checked against its "
                "evidence; evidence: quoted evidence sentences (the model's answer could not "
                "be shown); none: no answer (abstained, or the input guard replied).",
            },
            "flagged": {"type": "boolean"},
            "flags": {"type": "array", "items": {"type": "string"}},
            "held": {"type": "boolean", "description": "Held for review before it is shown."},
        },
    },
    "FeedbackRequest": {
        "type": "object",
        "required": ["message_id", "rating"],
        "properties": {
            "message_id": {"type": "integer"},
            "rating": {"type": "integer", "enum": [1, -1]},
            "correction": {"type": ["string", "null"], "description": "A better answer."},
            "reason": {"type": ["string", "null"], "maxLength": 500},
        },
    },
    "FeedbackCreated": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "integer"}},
    },
    "Message": {
        "type": "object",
        "required": ["id", "role", "content", "citations", "flagged", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "content": {"type": "string"},
            "citations": {"type": "array", "items": ref("Citation")},
            "sources": {"type": "array", "items": ref("Citation")},
            "origin": {"type": ["string", "null"], "enum": ["model", "evidence", "none", None]},
            "flagged": {"type": "boolean"},
            "flags": {"type": "array", "items": {"type": "string"}},
            "held": {"type": "boolean"},
            "created_at": _DATETIME,
            "rating": {"type": ["integer", "null"], "enum": [1, -1, None]},
        },
    },
    "Conversation": {
        "type": "object",
        "required": ["id", "title", "updated_at", "messages"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "collection": {"type": ["string", "null"]},
            "updated_at": _DATETIME,
            "messages": {"type": "array", "items": ref("Message")},
        },
    },
    "ConversationList": {
        "type": "object",
        "required": ["conversations"],
        "properties": {
            "conversations": {
                "type": "array",
                "description": "Newest first; `messages` is empty here.",
                "items": ref("Conversation"),
            }
        },
    },
    "Passage": {
        "type": "object",
        "required": ["doc_id", "title", "passage", "start", "end"],
        "properties": {
            "doc_id": {"type": "string"},
            "title": {"type": "string"},
            "source_url": {"type": "string"},
            "collection": {"type": "string"},
            "before": {"type": "string", "description": "Text just before the passage."},
            "passage": {"type": "string", "description": "The cited span."},
            "after": {"type": "string", "description": "Text just after the passage."},
            "start": {"type": "integer"},
            "end": {"type": "integer"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "database"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded"]},
            "database": {"type": "boolean", "description": "Whether the database answered."},
            "loaded": {
                "type": "object",
                "description": "Which heavy parts this process has loaded so far.",
                "additionalProperties": {"type": "boolean"},
            },
        },
    },
    "Job": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string"},
            "state": {
                "type": "string",
                "enum": ["queued", "running", "succeeded", "failed", "cancelled"],
            },
            "progress": {"type": "number", "minimum": 0, "maximum": 1},
            "message": {"type": "string"},
            "params": {"type": "object", "description": "What the job was asked to do."},
            "result": {
                "type": ["object", "null"],
                "description": "What it found or made so far (figures, ids, a live loss curve).",
            },
            "created_at": _DATETIME,
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
}

_STREAM_DESCRIPTION = """Server-sent events, in this order: one `sources`
(`{"citations": [Citation]}`: the numbered passages given to the model), any number of
`token` (`{"text": str}`), then one `done` (an `Answer`) or one `error` (an `Error`; it may
come before `sources`). The stream always ends with that `done` or `error`.
Each event is `event: <kind>` and `data: <one line of JSON>`, then a blank line."""

_CITED = {"n": 1, "doc_id": "medical/asthma", "title": "Asthma", "start": 0, "end": 120}
_ANSWERED = "Wheezing and shortness of breath [1]."
_STREAM_EXAMPLE = "".join(
    f"event: {kind}\ndata: {json.dumps(data)}\n\n"
    for kind, data in (
        ("sources", {"citations": [_CITED]}),
        ("token", {"text": _ANSWERED}),
        (
            "done",
            {
                "message_id": 2,
                "conversation_id": 1,
                "answer": _ANSWERED,
                "citations": [_CITED],
                "sources": [_CITED],
                "flagged": False,
                "abstained": False,
                "origin": "model",
            },
        ),
    )
)

PATHS: dict[str, Any] = {
    "/api/health": {
        "get": {
            "summary": "Liveness and database reachability",
            "security": [],
            "responses": {
                "200": json_response(ref("Health"), "Up"),
                "503": json_response(ref("Health"), "The database is unreachable"),
            },
        }
    },
    "/api/conversations": {
        "get": {
            "summary": "The signed-in user's conversations",
            "responses": {
                "200": json_response(ref("ConversationList"), "Newest first"),
                **errors(401),
            },
        }
    },
    "/api/conversations/{conversation_id}": {
        "get": {
            "summary": "One of the signed-in user's conversations, with its messages",
            "parameters": [
                {
                    "name": "conversation_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
            "responses": {"200": json_response(ref("Conversation"), "Found"), **errors(401, 404)},
        }
    },
    "/api/ask": {
        "post": {
            "summary": "Ask a question and wait for the whole answer",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("AskRequest")}},
            },
            "responses": {
                "200": json_response(ref("Answer"), "The stored, cited answer"),
                **errors(400, 401, 403, 404, 413, 415, 429, 500, 503),
            },
        }
    },
    "/api/feedback": {
        "post": {
            "summary": "Thumbs up/down on an answer, with an optional correction",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("FeedbackRequest")}},
            },
            "responses": {
                "201": json_response(ref("FeedbackCreated"), "Stored"),
                **errors(400, 401, 404, 413, 415),
            },
        }
    },
    "/api/jobs": {
        "get": {
            "summary": "Recent background jobs with their progress (admin)",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"jobs": {"type": "array", "items": ref("Job")}},
                    },
                    "Newest first",
                ),
                **errors(401, 403),
            },
        }
    },
    "/chat/ask": {
        "post": {
            "summary": "Ask a question; the answer streams as server-sent events (browser)",
            "parameters": [_CSRF_HEADER],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("AskRequest")}},
            },
            "responses": {
                "200": {
                    "description": _STREAM_DESCRIPTION,
                    "content": {
                        "text/event-stream": {
                            "schema": {"type": "string"},
                            "example": _STREAM_EXAMPLE,
                        }
                    },
                },
                **errors(400, 401, 403, 404, 413, 429, 503),
            },
        }
    },
    "/chat/feedback": {
        "post": {
            "summary": "Thumbs up/down on an answer (browser)",
            "parameters": [_CSRF_HEADER],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("FeedbackRequest")}},
            },
            "responses": {
                "201": json_response(ref("FeedbackCreated"), "Stored"),
                **errors(400, 401, 404, 413),
            },
        }
    },
    "/passage/{doc_id}": {
        "get": {
            "summary": "A cited passage in its context, for the citation panel",
            "parameters": [
                {
                    "name": "doc_id",
                    "in": "path",
                    "required": True,
                    "description": "May contain slashes.",
                    "schema": {"type": "string"},
                },
                {"name": "start", "in": "query", "required": True, "schema": {"type": "integer"}},
                {"name": "end", "in": "query", "required": True, "schema": {"type": "integer"}},
            ],
            "responses": {"200": json_response(ref("Passage"), "Found"), **errors(400, 401, 404)},
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Domain assistant",
        "version": "0.1.0",
        "description": "Medical and legal questions answered from a document corpus, with "
        "citations. Authentication: the session cookie set by `POST /login`. The `/api` "
        "endpoints need no CSRF token but accept only `application/json` bodies; the "
        "`/chat` endpoints need the `X-CSRFToken` header. Errors are "
        '`{"error": code, "message": text}`.',
    },
    "servers": [{"url": "/"}],
    "security": [{"session": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "session"}},
    },
}


def collect(app: Flask) -> dict[str, Any]:
    """The document with the path items, schemas and security schemes of every registered
    blueprint module, and the bounds this app's settings put on questions."""
    doc = copy.deepcopy(DOCUMENT)
    components = doc["components"]
    seen: set[str] = set()
    for blueprint in app.blueprints.values():
        module = sys.modules.get(blueprint.import_name)
        if module is None or blueprint.import_name in seen:
            continue
        seen.add(blueprint.import_name)
        for path, item in getattr(module, "OPENAPI_PATHS", {}).items():
            doc["paths"].setdefault(path, {}).update(copy.deepcopy(item))
        for name, schema in getattr(module, "OPENAPI_SCHEMAS", {}).items():
            components["schemas"].setdefault(name, copy.deepcopy(schema))
        for name, scheme in getattr(module, "OPENAPI_SECURITY_SCHEMES", {}).items():
            components["securitySchemes"].setdefault(name, copy.deepcopy(scheme))
    doc["paths"] = dict(sorted(doc["paths"].items()))
    services = app.extensions.get("assistant")
    if services is not None:
        settings = services.settings
        question = components["schemas"]["AskRequest"]["properties"]["question"]
        question["maxLength"] = settings.safety.max_question_chars
        components["schemas"]["Collection"]["enum"] = [*settings.collections, "", None]
    return doc


@bp.get("/openapi.json")
def document() -> Response:
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    cached = app.extensions.get("openapi_document")
    if cached is None:  # blueprints are all registered before the first request
        cached = app.extensions["openapi_document"] = collect(app)
    return jsonify(cached)
