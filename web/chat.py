"""The chat pages and their JSON/SSE endpoints, for every signed-in role."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, render_template

from assistant.asking.chat import StreamEvent, Turn
from assistant.errors import AssistantError, InvalidInput
from web.auth import current_user_id, role_required
from web.common import services, sse, to_json
from web.openapi import Reply, operation
from web.schemas import (
    AskRequest,
    FeedbackCreated,
    FeedbackRequest,
    Passage,
    PassageQuery,
)
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


STREAM = """Server-sent events, in this order: one `sources`
(`{"citations": [Citation]}`: the numbered passages given to the model), any number of
`token` (`{"text": str}`), then one `done` (an `Answer`) or one `error` (an `Error`; it may
come before `sources`). The stream always ends with that `done` or `error`.
Each event is `event: <kind>` and `data: <one line of JSON>`, then a blank line."""

_CITED = {"n": 1, "doc_id": "medical/asthma", "title": "Asthma", "start": 0, "end": 120}
_ANSWERED = "Wheezing and shortness of breath [1]."
_DONE = {
    "message_id": 2,
    "conversation_id": 1,
    "answer": _ANSWERED,
    "citations": [_CITED],
    "sources": [_CITED],
    "flagged": False,
    "abstained": False,
    "origin": "model",
}
STREAM_EXAMPLE = "".join(
    f"event: {kind}\ndata: {json.dumps(data)}\n\n"
    for kind, data in (
        ("sources", {"citations": [_CITED]}),
        ("token", {"text": _ANSWERED}),
        ("done", _DONE),
    )
)


@bp.post("/chat/ask")
@role_required()
@operation(
    "Ask a question; the answer streams as server-sent events (browser)",
    body=AskRequest,
    csrf=True,
    ok={200: Reply("The answer as it is made", stream=STREAM, example=STREAM_EXAMPLE)},
    errors=(400, 401, 403, 404, 413, 429, 503),
)
def ask(body: AskRequest) -> Response:
    # start_turn validates and stores the question first, so bad input is a 4xx, not a stream.
    turn = services().chat.start_turn(
        current_user_id(), body.question, body.conversation_id, body.collection or None
    )
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
@operation(
    "Thumbs up/down on an answer (browser)",
    body=FeedbackRequest,
    csrf=True,
    ok={201: Reply("Stored", FeedbackCreated)},
    errors=(400, 401, 404, 413),
)
def feedback(body: FeedbackRequest) -> tuple[Response, int]:
    feedback_id = services().feedback.add_feedback(current_user_id(), **body.model_dump())
    return jsonify(id=feedback_id), 201


@bp.get("/passage/<path:doc_id>")
@role_required()
@operation(
    "A cited passage in its context, for the citation panel",
    query=PassageQuery,
    ok={200: Reply("Found", Passage)},
    errors=(400, 401, 404),
)
def passage(doc_id: str, query: PassageQuery) -> Any:
    if query.end < query.start:
        raise InvalidInput("'start' and 'end' must be integers with 0 <= start <= end.")
    return jsonify(to_json(services().history.passage(doc_id, query.start, query.end)))
