"""The JSON API under /api: health, conversations, asking and feedback (session-cookie auth).

CSRF: this blueprint is exempt from the CSRF token, and in exchange every state-changing
request must carry ``Content-Type: application/json`` (415 otherwise). Browsers cannot send
that content type cross-site without a CORS preflight, which this app never grants, so a
foreign page cannot drive these endpoints with the user's cookie; the cookie is also
SameSite=Lax. Scripts and other clients thus need no token, only JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request
from sqlalchemy import text

from assistant.chat import StreamEvent
from assistant.storage.models import Role
from web.admin import recent_jobs
from web.auth import current_user_id, role_required
from web.common import ask_args, feedback_args, json_body, services, status_for, to_json

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@bp.before_request
def require_json() -> None:
    if request.method in UNSAFE_METHODS and not request.is_json:
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
    views = services().chat.list_conversations(current_user_id())
    return jsonify(conversations=to_json(views))


@bp.get("/conversations/<int:conversation_id>")
@role_required()
def conversation(conversation_id: int) -> Response:
    return jsonify(to_json(services().chat.get_conversation(current_user_id(), conversation_id)))


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
    feedback_id = services().chat.add_feedback(current_user_id(), **feedback_args(json_body()))
    return jsonify(id=feedback_id), 201


@bp.get("/jobs")
@role_required(Role.ADMIN)
def jobs() -> Response:
    with services().db.session() as s:
        rows = recent_jobs(s)
        return jsonify(
            jobs=[
                {
                    "id": job.id,
                    "kind": job.kind,
                    "state": job.state.value,
                    "progress": job.progress,
                    "message": job.message,
                    "created_at": job.created_at,
                    "started_at": job.started_at,
                    "finished_at": job.finished_at,
                }
                for job in rows
            ]
        )
