"""The JSON API under /api: health, conversations, asking and feedback (session-cookie auth).

CSRF: this blueprint is exempt from the CSRF token, and in exchange every state-changing
request must carry ``Content-Type: application/json`` (415 otherwise). Browsers cannot send
that content type cross-site without a CORS preflight, which this app never grants, so a
foreign page cannot drive these endpoints with the user's cookie; the cookie is also
SameSite=Lax. Scripts and other clients thus need no token, only JSON.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy import text

from assistant.accounts import roles
from assistant.accounts.removal import remove_account
from assistant.asking.chat import StreamEvent
from assistant.corpus import documents as corpus_documents
from assistant.corpus import uploads
from assistant.errors import InvalidInput
from assistant.evaluation import quality as quality_figures
from assistant.infra import audit
from assistant.infra import jobs as job_rows
from assistant.storage.models import Role
from web.admin import recent_jobs
from web.auth import current_user_id, role_required
from web.common import (
    ask_args,
    feedback_args,
    job_json,
    json_body,
    send_task,
    services,
    status_for,
    to_json,
)
from web.openapi import errors, json_response, ref

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

# Methods with a body: only JSON, so a cross-site form cannot send them. DELETE carries no
# body and is never a "simple" request: a browser asks the server's leave first (CORS
# preflight), which this app never grants.
BODY_METHODS = {"POST", "PUT", "PATCH"}


@bp.before_request
def require_json() -> None:
    if request.method in BODY_METHODS and not request.is_json:
        abort(415, "Send a JSON body with Content-Type: application/json.")


@bp.get("/health")
def health() -> tuple[Response, int]:
    try:
        with services().db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = True
    except Exception:
        logger.exception("Health check: the database is unreachable")
        database = False
    loaded = {name: services().loaded(name) for name in ("embedder", "index", "llm", "scrubber")}
    status = "ok" if database else "degraded"
    return jsonify(status=status, database=database, loaded=loaded), 200 if database else 503


@bp.get("/conversations")
@role_required()
def conversations() -> Response:
    views = services().history.list_conversations(current_user_id())
    return jsonify(conversations=to_json(views))


@bp.get("/conversations/<int:conversation_id>")
@role_required()
def conversation(conversation_id: int) -> Response:
    return jsonify(to_json(services().history.get_conversation(current_user_id(), conversation_id)))


@bp.post("/ask")
@role_required()
def ask() -> Any:
    chat = services().chat
    turn = chat.start_turn(current_user_id(), **ask_args(json_body()))
    # Drain the whole stream (so the answer is stored and the generator finishes), then
    # answer with its last word: the stored answer or the error.
    last: StreamEvent | None = None
    for event in chat.stream_answer(turn):
        if event.kind in ("done", "error"):
            last = event
    if last is None:
        raise RuntimeError("The answer stream ended without a done or error event")
    if last.kind == "done":
        return jsonify(last.data)
    code = str(last.data.get("error", "internal_error"))
    response = jsonify(error=code, message=str(last.data.get("message", "")))
    response.status_code = status_for(code)
    return response


@bp.post("/feedback")
@role_required()
def feedback() -> tuple[Response, int]:
    feedback_id = services().feedback.add_feedback(current_user_id(), **feedback_args(json_body()))
    return jsonify(id=feedback_id), 201


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """An integer query argument within [low, high]; anything else is a 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(f"'{name}' must be an integer between {low} and {high}.")
    return int(raw)


def _page() -> int:
    return _int_arg("page", 1, 1, 1_000_000)


def _query_text(name: str, limit: int = 200) -> str | None:
    value = request.args.get(name, "")
    if len(value) > limit:
        raise InvalidInput(f"'{name}' is limited to {limit} characters.")
    return value.strip() or None


@bp.get("/jobs")
@role_required(Role.ADMIN)
def jobs() -> Response:
    with services().db.session() as s:
        return jsonify(jobs=[job_json(job) for job in recent_jobs(s, kind=_query_text("kind", 50))])


@bp.get("/jobs/<int:job_id>")
@role_required(Role.ADMIN)
def job(job_id: int) -> Response:
    return jsonify(job_json(job_rows.get_job(services().db, job_id)))


@bp.get("/admin/documents")
@role_required(Role.ADMIN)
def documents() -> Response:
    with services().db.session() as s:
        page = corpus_documents.list_documents(
            s, _query_text("collection", 50), _query_text("q"), _page()
        )
    return jsonify(to_json(page))


@bp.get("/admin/documents/<path:doc_id>")
@role_required(Role.ADMIN)
def document(doc_id: str) -> Response:
    with services().db.session() as s:
        row = corpus_documents.get_document(s, doc_id)
    chunks = corpus_documents.document_chunks(services(), doc_id)
    return jsonify(document=to_json(row), chunks=to_json(chunks))


MAX_API_UPLOAD_FILES = 20


@bp.post("/admin/documents")
@role_required(Role.ADMIN)
def upload_documents() -> tuple[Response, int]:
    """Files given in JSON (``text``, or ``base64`` for a PDF), stored and indexed as a job."""
    body = json_body()
    collection = body.get("collection")
    files = body.get("files")
    if not isinstance(collection, str):
        raise InvalidInput("'collection' must be a string.")
    if not isinstance(files, list) or not 1 <= len(files) <= MAX_API_UPLOAD_FILES:
        raise InvalidInput(f"'files' must be a list of 1 to {MAX_API_UPLOAD_FILES} files.")
    decoded = [_uploaded_file(i, f) for i, f in enumerate(files)]
    paths = uploads.save_uploads(
        services(), collection, [(name, io.BytesIO(data)) for name, data in decoded]
    )
    job_id = uploads.start_ingest(
        services(), send_task(), collection, paths, current_user_id(), "upload"
    )
    return jsonify(job_id=job_id, files=[p.name for p in paths]), 202


def _uploaded_file(index: int, item: object) -> tuple[str, bytes]:
    where = f"files[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("filename"), str):
        raise InvalidInput(f"{where} must be an object with a 'filename' string.")
    text, encoded = item.get("text"), item.get("base64")
    if (text is None) == (encoded is None):
        raise InvalidInput(f"{where} needs exactly one of 'text' or 'base64'.")
    if text is not None:
        if not isinstance(text, str):
            raise InvalidInput(f"{where}.text must be a string.")
        try:
            return item["filename"], text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
            raise InvalidInput(f"{where}.text is not valid Unicode.") from None
    if not isinstance(encoded, str):
        raise InvalidInput(f"{where}.base64 must be a string.")
    try:
        return item["filename"], base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{where}.base64 is not valid base64.") from None


@bp.post("/admin/reindex")
@role_required(Role.ADMIN)
def reindex() -> tuple[Response, int]:
    collection = json_body().get("collection")
    if not isinstance(collection, str):
        raise InvalidInput("'collection' must be a string.")
    paths = uploads.uploaded_files(services(), collection)
    job_id = uploads.start_ingest(
        services(), send_task(), collection, paths, current_user_id(), "reindex"
    )
    return jsonify(job_id=job_id), 202


@bp.get("/admin/quality")
@role_required(Role.ADMIN)
def quality() -> Response:
    days = _int_arg("days", 14, 1, 365)
    with services().db.session() as s:
        figures = quality_figures.quality(s, days)
    return jsonify(
        days=to_json(figures.days),
        versions=[
            {
                "version": v.version,
                "thumbs_up": v.thumbs_up,
                "thumbs_down": v.thumbs_down,
                "rate": v.rate,
            }
            for v in figures.versions
        ],
        flag_reasons=figures.flag_reasons,
    )


@bp.get("/admin/users")
@role_required(Role.ADMIN)
def users() -> Response:
    with services().db.session() as s:
        return jsonify(users=to_json(roles.list_accounts(s)))


@bp.patch("/admin/users/<int:user_id>")
@role_required(Role.ADMIN)
def update_user(user_id: int) -> Response:
    body = json_body()
    role, active = body.get("role"), body.get("active")
    if role is not None and not isinstance(role, str):
        raise InvalidInput("'role' must be a string.")
    if active is not None and not isinstance(active, bool):
        raise InvalidInput("'active' must be true or false.")
    with services().db.session() as s:
        account = roles.update_account(s, current_user_id(), user_id, role, active)
    return jsonify(to_json(account))


@bp.delete("/admin/users/<int:user_id>")
@role_required(Role.ADMIN)
def delete_user(user_id: int) -> Response:
    removed = remove_account(services().db, user_id, current_user_id(), services().answer_cache)
    return jsonify(to_json(removed))


@bp.get("/admin/audit")
@role_required(Role.ADMIN)
def audit_log() -> Response:
    with services().db.session() as s:
        page = audit.audit_log(s, _query_text("action", 100), _page())
    return jsonify(to_json(page))


_PAGE = {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}}
_ID = {"name": "user_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_OBJECT = {"type": "object"}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "JobDetail": {
        "allOf": [ref("Job")],
        "properties": {"result": {"type": "object", "description": "What the job produced."}},
    },
    "Account": {
        "type": "object",
        "required": ["id", "email", "role", "is_active"],
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "is_active": {"type": "boolean"},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "conversations": {"type": "integer"},
        },
    },
    "RemovedAccount": {
        "type": "object",
        "description": "What went with the account; its content is gone.",
        "required": ["user_id", "conversations", "messages", "feedback"],
        "properties": {
            name: {"type": "integer"}
            for name in (
                "user_id",
                "conversations",
                "messages",
                "feedback",
                "review_items",
                "api_tokens",
                "cached_answers",
            )
        },
    },
    "AccountChange": {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": [r.value for r in Role]},
            "active": {"type": "boolean", "description": "false: the account cannot sign in."},
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/jobs/{job_id}": {
        "get": {
            "summary": "One background job with its progress and result (admin)",
            "parameters": [
                {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "responses": {"200": json_response(ref("JobDetail"), "Found"), **errors(401, 403, 404)},
        }
    },
    "/api/admin/documents": {
        "get": {
            "summary": "Documents of the corpus, by title (admin)",
            "parameters": [
                {"name": "collection", "in": "query", "schema": {"type": "string"}},
                {
                    "name": "q",
                    "in": "query",
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "Title or id contains",
                },
                _PAGE,
            ],
            "responses": {"200": json_response(_OBJECT, "One page"), **errors(400, 401, 403)},
        },
        "post": {
            "summary": "Upload corpus files into a collection and index them as a job (admin)",
            "description": "Each file gives its `filename` (.jsonl, .txt, .md, .html, .pdf) and "
            f"either `text` or `base64` (for a PDF). Up to {MAX_API_UPLOAD_FILES} files, "
            f"{uploads.MAX_UPLOAD_BYTES // 2**20} MiB each, a body of "
            f"{uploads.MAX_UPLOAD_REQUEST // 2**20} MiB in all; all are stored or none; a "
            "same-named upload is replaced.",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["collection", "files"],
                            "properties": {
                                "collection": {"type": "string"},
                                "files": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": MAX_API_UPLOAD_FILES,
                                    "items": {
                                        "type": "object",
                                        "required": ["filename"],
                                        "properties": {
                                            "filename": {"type": "string"},
                                            "text": {"type": "string"},
                                            "base64": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "202": json_response(
                    {
                        "type": "object",
                        "properties": {
                            "job_id": {"type": "integer"},
                            "files": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                    "Stored and queued; follow the job at /api/jobs/{job_id}",
                ),
                **errors(400, 401, 403, 413, 415),
            },
        },
    },
    "/api/admin/documents/{doc_id}": {
        "get": {
            "summary": "One document and its chunks in the index in service (admin)",
            "parameters": [
                {"name": "doc_id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {"200": json_response(_OBJECT, "Found"), **errors(401, 403, 404)},
        }
    },
    "/api/admin/reindex": {
        "post": {
            "summary": "Re-index a collection's uploaded files as a background job (admin)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["collection"],
                            "properties": {"collection": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "202": json_response(
                    {"type": "object", "properties": {"job_id": {"type": "integer"}}},
                    "Queued; follow it at /api/jobs/{job_id}",
                ),
                **errors(400, 401, 403, 415),
            },
        }
    },
    "/api/admin/quality": {
        "get": {
            "summary": "Counts per day, thumbs-up rate per model version, flag reasons (admin)",
            "parameters": [
                {
                    "name": "days",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 365},
                }
            ],
            "responses": {"200": json_response(_OBJECT, "Figures"), **errors(400, 401, 403)},
        }
    },
    "/api/admin/users": {
        "get": {
            "summary": "Accounts with their roles (admin)",
            "responses": {
                "200": json_response(
                    {
                        "type": "object",
                        "properties": {"users": {"type": "array", "items": ref("Account")}},
                    },
                    "By email",
                ),
                **errors(401, 403),
            },
        }
    },
    "/api/admin/users/{user_id}": {
        "patch": {
            "summary": "Change an account's role or whether it may sign in (admin)",
            "parameters": [_ID],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("AccountChange")}},
            },
            "responses": {
                "200": json_response(ref("Account"), "Changed"),
                **errors(400, 401, 403, 404, 409, 415),
            },
        },
        "delete": {
            "summary": "Remove an account with its conversations, feedback, tokens and cached "
            "answers (admin); the last active admin stays",
            "parameters": [_ID],
            "responses": {
                "200": json_response(ref("RemovedAccount"), "Removed"),
                **errors(401, 403, 404, 409),
            },
        },
    },
    "/api/admin/audit": {
        "get": {
            "summary": "The audit log, newest first (admin)",
            "parameters": [
                {
                    "name": "action",
                    "in": "query",
                    "schema": {"type": "string", "maxLength": 100},
                    "description": "An exact action, or a prefix ending in a dot (`review.`)",
                },
                _PAGE,
            ],
            "responses": {"200": json_response(_OBJECT, "One page"), **errors(400, 401, 403)},
        }
    },
}
