"""The chat pages and their JSON/SSE endpoints, for every signed-in role."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from assistant.asking.chat import StreamEvent, Turn
from assistant.errors import AssistantError, InvalidInput
from web.auth import current_user_id, role_required
from web.common import ask_args, feedback_args, json_body, services, sse, to_json
from web.streaming import event_stream

logger = logging.getLogger(__name__)

bp = Blueprint("chat", __name__)


def _page(conversation_id: int | None) -> str:
    history = services().history
    user_id = current_user_id()
    current = (
        history.get_conversation(user_id, conversation_id) if conversation_id is not None else None
    )
    settings = services().settings
    return render_template(
        "chat.html",
        conversations=history.list_conversations(user_id),
        current=current,
        collections=settings.collections,
        max_question_chars=settings.safety.max_question_chars,
        held_poll_ms=int(settings.web.held_poll_seconds * 1000),
    )


@bp.get("/")
@role_required()
def index() -> str:
    return _page(None)


@bp.get("/c/<int:conversation_id>")
@role_required()
def conversation(conversation_id: int) -> str:
    return _page(conversation_id)


@bp.post("/chat/ask")
@role_required()
def ask() -> Response:
    # start_turn validates and stores the question first, so bad input is a 4xx, not a stream.
    turn = services().chat.start_turn(current_user_id(), **ask_args(json_body()))
    return event_stream(_events(turn), services().settings.web.stream_write_timeout_s)


def _events(turn: Turn) -> Iterator[str]:
    # Headers are already sent: a failure can only be told as a last event.
    try:
        for event in services().chat.stream_answer(turn):
            yield sse(event)
    except AssistantError as e:
        yield sse(StreamEvent("error", {"error": e.code, "message": str(e)}))
    except Exception:
        logger.exception("Answer stream failed for conversation %d", turn.conversation_id)
        message = "Something went wrong on our side. Try again later."
        yield sse(StreamEvent("error", {"error": "internal_error", "message": message}))


@bp.post("/chat/feedback")
@role_required()
def feedback() -> tuple[Response, int]:
    feedback_id = services().feedback.add_feedback(current_user_id(), **feedback_args(json_body()))
    return jsonify(id=feedback_id), 201


@bp.get("/passage/<path:doc_id>")
@role_required()
def passage(doc_id: str) -> Any:
    start = request.args.get("start", type=int)
    end = request.args.get("end", type=int)
    if start is None or end is None or start < 0 or end < start:
        raise InvalidInput("'start' and 'end' must be integers with 0 <= start <= end.")
    return jsonify(to_json(services().history.passage(doc_id, start, end)))
