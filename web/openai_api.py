"""The OpenAI-compatible API under /v1 (bearer API tokens): chat completions with RAG, models.

Any OpenAI client works: the last user message is the question, answered from the corpus;
the answer carries its sources in an extra ``citations`` field (and in the last chunk of a
stream). Errors use OpenAI's shape, ``{"error": {"message", "type", "code"}}``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from assistant.accounts.tokens import verify_token
from assistant.asking.answer import GenerationOptions
from assistant.asking.chat import StreamEvent, Turn
from assistant.asking.conversation import PastTurn
from assistant.errors import AssistantError, InvalidInput, ModelNotFound, ServerBusy, Unauthorized
from assistant.llm import registry
from safety.guards import normalise_question
from web.common import services
from web.errors import error_response, openai_error
from web.streaming import event_stream

logger = logging.getLogger(__name__)

bp = Blueprint("openai_api", __name__, url_prefix="/v1")

MAX_MESSAGES = 100
MAX_HISTORY_TURNS = 6  # earlier user turns read to resolve a follow-up
MAX_EARLIER_CHARS = 2000  # of each earlier question
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
ACTIVE_MODEL_ALIAS = "assistant"


@bp.errorhandler(AssistantError)
def _assistant_error(e: AssistantError) -> Response:
    response = openai_error(e.http_status, e.code, str(e) or e.code.replace("_", " "))
    if isinstance(e, ServerBusy):
        response.headers["Retry-After"] = str(e.retry_after_s)
    if isinstance(e, Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="assistant"'
    return response


@bp.app_errorhandler(ServerBusy)
def _busy(e: ServerBusy) -> Response:
    """Everywhere in the app: a full model queue is a 503 that says when to come back."""
    if request.path.startswith("/v1/"):
        return _assistant_error(e)
    response = error_response(e.http_status, e.code, str(e))
    response.headers["Retry-After"] = str(e.retry_after_s)
    return response


@bp.before_request
def _authenticate() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API token: Authorization: Bearer <token>")
    g.api_token = verify_token(services().db, token.strip())


@bp.get("/models")
def models() -> Response:
    versions = registry.list_versions(services().db)
    return jsonify(
        object="list",
        data=[
            {
                "id": v.name,
                "object": "model",
                "created": int(v.created_at.timestamp()),
                "owned_by": "assistant",
                "kind": v.kind.value,
                "state": v.state.value,
                "active": v.is_active,
                "version_id": v.id,
            }
            for v in versions
        ],
    )


@bp.post("/chat/completions")
def chat_completions() -> Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object with Content-Type: application/json")
    question, history = _conversation(body.get("messages"))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidInput("'stream' must be true or false")
    collection = body.get("collection")
    if collection is not None and not isinstance(collection, str):
        raise InvalidInput("'collection' must be a string")
    options = _options(body)
    chat = services().chat
    # Validated, guarded and stored before anything streams: bad input is a 4xx here.
    turn = chat.start_turn(
        g.api_token.user_id, question, None, collection or None, history=history, options=options
    )
    completion_id = f"chatcmpl-{turn.user_message_id}"
    if stream:
        return event_stream(
            _chunks(turn, completion_id), services().settings.web.stream_write_timeout_s
        )
    return _complete(turn, completion_id)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: the text ones
        texts: list[str] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                text = part.get("text", "")
                if not isinstance(text, str):  # was a TypeError, a 500 (Schemathesis)
                    raise InvalidInput(f"a {message.get('role')} message's 'text' must be text")
                texts.append(text)
        content = "".join(texts)
    if content is None and message.get("role") == "assistant":
        return ""  # an assistant turn that only called tools
    if not isinstance(content, str):
        raise InvalidInput(f"a {message.get('role')} message's 'content' must be text")
    return content


def _conversation(messages: Any) -> tuple[str, list[PastTurn]]:
    """The question (the last user message) and the user turns before it, oldest first.

    System messages are not followed (the product's own instructions stay in force);
    assistant messages are the client's copy of earlier answers.
    """
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise InvalidInput(f"'messages' must be a list of 1 to {MAX_MESSAGES} messages")
    users: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidInput("each message needs a 'role' and a 'content'")
        if message["role"] not in ROLES:
            raise InvalidInput(f"unknown message role {message['role']!r}")
        text = _text_of(message)
        if message["role"] == "user":
            users.append(text)
    if not users:
        raise InvalidInput("'messages' holds no user message")
    if messages[-1].get("role") != "user":
        raise InvalidInput("the last message must be the user's question")
    earlier = [q for q in users[:-1] if q.strip()][-MAX_HISTORY_TURNS:]
    return users[-1], [PastTurn(normalise_question(q)[:MAX_EARLIER_CHARS]) for q in earlier]


def _options(body: dict[str, Any]) -> GenerationOptions:
    """The OpenAI parameters the product honours: model, max_tokens, temperature, stop."""
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (
        isinstance(max_tokens, bool)
        or not isinstance(max_tokens, int)
        or not 1 <= max_tokens <= 4096
    ):
        raise InvalidInput("'max_tokens' must be an integer from 1 to 4096")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise InvalidInput("'temperature' must be a number from 0 to 2")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list)
        or len(stop) > 4
        or not all(isinstance(x, str) and 0 < len(x) <= 100 for x in stop)
    ):
        raise InvalidInput("'stop' must be a string or a list of up to 4 strings")
    return GenerationOptions(
        max_tokens=max_tokens,
        temperature=float(temperature) if temperature is not None else None,
        stop=tuple(stop or ()),
        version=_requested_version(body.get("model")),
    )


def _requested_version(model: Any) -> registry.ModelVersionInfo | None:
    """The version a request names; None for the active one ("assistant" or no model)."""
    if model is None or model == ACTIVE_MODEL_ALIAS:
        return None
    if not isinstance(model, str):
        raise InvalidInput("'model' must be a string")
    for version in registry.list_versions(services().db):
        if version.name == model:
            if version.state.value == "rejected":
                raise ModelNotFound(f"the model `{model}` was rejected by the evaluation gate")
            return None if version.is_active else version
    raise ModelNotFound(f"The model `{model}` does not exist")


def _served_model(done: dict[str, Any]) -> str:
    version_id = done.get("model_version_id")
    if version_id is None:
        return str(done.get("model") or "assistant")
    try:
        return registry.get_version(services().db, int(version_id)).name
    except AssistantError:
        return str(version_id)


def _extras(done: dict[str, Any]) -> dict[str, Any]:
    return {
        "citations": done.get("citations", []),
        "sources": done.get("sources", []),
        "abstained": bool(done.get("abstained")),
        "origin": done.get("origin", "none"),
        "flagged": bool(done.get("flagged")),
        "flags": done.get("flags", []),
        "held": bool(done.get("held")),
        "message_id": done.get("message_id"),
        "conversation_id": done.get("conversation_id"),
    }


def _usage(done: dict[str, Any]) -> dict[str, int]:
    completion = int((done.get("timings") or {}).get("completion_tokens", 0))
    prompt = int(done.get("prompt_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _complete(turn: Turn, completion_id: str) -> Response:
    last: StreamEvent | None = None
    for event in services().chat.stream_answer(turn):
        if event.kind in ("done", "error"):
            last = event
    if last is None or last.kind == "error":
        data = last.data if last is not None else {}
        code = str(data.get("error", "internal_error"))
        from web.common import status_for

        return openai_error(status_for(code), code, str(data.get("message", "")))
    done = last.data
    return jsonify(
        id=completion_id,
        object="chat.completion",
        created=int(time.time()),
        model=_served_model(done),
        choices=[
            {
                "index": 0,
                "message": {"role": "assistant", "content": done["answer"]},
                "finish_reason": done.get("finish_reason") or "stop",
            }
        ],
        usage=_usage(done),
        **_extras(done),
    )


def _chunk(
    completion_id: str, created: int, model: str, delta: dict[str, Any], **extra: Any
) -> str:
    finish = extra.pop("finish_reason", None)
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False, default=str)}\n\n"


def _chunks(turn: Turn, completion_id: str) -> Iterator[str]:
    created = int(time.time())
    model = "assistant"
    yield _chunk(completion_id, created, model, {"role": "assistant", "content": ""})
    try:
        for event in services().chat.stream_answer(turn):
            if event.kind == "token":
                yield _chunk(completion_id, created, model, {"content": event.data["text"]})
            elif event.kind == "done":
                done = event.data
                yield _chunk(
                    completion_id,
                    created,
                    _served_model(done),
                    {},
                    finish_reason=done.get("finish_reason") or "stop",
                    usage=_usage(done),
                    **_extras(done),
                )
            elif event.kind == "error":
                error = {"message": event.data.get("message", ""), "type": "server_error"}
                error["code"] = event.data.get("error", "internal_error")
                yield f"data: {json.dumps({'error': error})}\n\n"
    except Exception:
        logger.exception("completion stream %s failed", completion_id)
        error = {"message": "internal error", "type": "server_error", "code": "internal_error"}
        yield f"data: {json.dumps({'error': error})}\n\n"
    yield "data: [DONE]\n\n"


# OpenAI's clients parse their own error shape, so /v1 answers errors that way, not as the
# rest of the product's ``{"error", "message"}``.
_TOKENS = {
    "type": ["integer", "null"],
    "minimum": 1,
    "maximum": 4096,
    "description": "Cap on generated tokens; null or absent: the server's setting.",
}
_STOP_TEXT = {"type": "string", "minLength": 1, "maxLength": 100}

OPENAPI_SCHEMAS: dict[str, dict[str, Any]] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "code": {"type": "string"},
                },
            }
        },
    },
    "ChatMessage": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": sorted(ROLES)},
            "content": {
                "anyOf": [
                    {"type": "string"},
                    {
                        "type": "array",
                        "description": "Content parts: only those of type `text` are read.",
                        "items": {
                            "type": "object",
                            "required": ["type", "text"],
                            "properties": {
                                "type": {"type": "string", "enum": ["text"]},
                                "text": {"type": "string"},
                            },
                        },
                    },
                    {"type": "null"},
                ],
                "description": "null only in an assistant message (one that called tools).",
            },
        },
        "if": {"properties": {"role": {"not": {"const": "assistant"}}}},
        "then": {"properties": {"content": {"type": ["string", "array"]}}},
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["messages"],
        "properties": {
            "model": {
                "type": ["string", "null"],
                "description": "A model version's name (`GET /v1/models`); `assistant`, null "
                "or absent: the active version. An unknown or rejected one is a 404.",
                "examples": [ACTIVE_MODEL_ALIAS],
            },
            "messages": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_MESSAGES,
                "items": {"$ref": "#/components/schemas/ChatMessage"},
                "contains": {"properties": {"role": {"const": "user"}}},
                "description": "The last message is the user's question (the setting "
                "safety.max_question_chars bounds it); earlier user messages resolve a "
                "follow-up; system messages are not followed.",
            },
            "stream": {"type": "boolean", "default": False},
            "max_tokens": _TOKENS,
            "max_completion_tokens": {**_TOKENS, "description": "Wins over `max_tokens`."},
            "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
            "stop": {
                "anyOf": [
                    _STOP_TEXT,
                    {"type": "array", "maxItems": 4, "items": _STOP_TEXT},
                    {"type": "null"},
                ]
            },
            "collection": {"$ref": "#/components/schemas/Collection"},
        },
        "examples": [
            {
                "model": ACTIVE_MODEL_ALIAS,
                "messages": [{"role": "user", "content": "What are the symptoms of asthma?"}],
            },
            {
                "messages": [
                    {"role": "user", "content": "What is leukemia?"},
                    {"role": "assistant", "content": "A cancer of the blood cells [1]."},
                    {"role": "user", "content": "How is it treated?"},
                ],
                "stream": True,
                "max_tokens": 64,
            },
        ],
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage", "citations"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": {"type": "object"},
            "citations": {"type": "array", "items": {"$ref": "#/components/schemas/Citation"}},
            "sources": {"type": "array", "items": {"$ref": "#/components/schemas/Citation"}},
            "abstained": {"type": "boolean"},
            "flagged": {"type": "boolean"},
            "held": {"type": "boolean"},
        },
    },
}

OPENAPI_SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`assistant create-token`).",
    }
}

_CHUNKS_DESCRIPTION = """With `stream: true`: server-sent events, each `data: <one line of
JSON>` and a blank line: `chat.completion.chunk` objects (the first with the role, then the
text, the last with `finish_reason`, `usage`, `citations` and `sources`), or, when the answer
fails after the stream started, one `{"error": {"message", "type", "code"}}`; then always
`data: [DONE]`."""


def _openai_error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}},
    }


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {
        "post": {
            "summary": "OpenAI-compatible chat completion, answered from the corpus (RAG)",
            "description": "The last user message is the question. `stream: true` sends "
            "`chat.completion.chunk` server-sent events ending with `data: [DONE]`; the last "
            "chunk (and the non-streamed answer) carries `citations`, `flagged`, `flags` and "
            "`held`. Needs `Authorization: Bearer <API token>` (`assistant create-token`). "
            "503 with Retry-After when the model's queue is full.",
            "security": [{"bearerAuth": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "A `chat.completion` (or, with `stream: true`, its chunks).",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ChatCompletion"}
                        },
                        "text/event-stream": {
                            "schema": {"type": "string", "description": _CHUNKS_DESCRIPTION}
                        },
                    },
                },
                "400": _openai_error("Invalid request."),
                "401": _openai_error("Missing, unknown or revoked API token."),
                "404": _openai_error("No such model version (`model_not_found`)."),
                "413": _openai_error(
                    "Body over 1 MiB, or prompt and `max_tokens` too long for the model."
                ),
                "429": _openai_error("Too many requests; retry after Retry-After seconds."),
                "503": _openai_error("The model is busy: retry after Retry-After seconds."),
            },
        }
    },
    "/v1/models": {
        "get": {
            "summary": "The model versions of the registry (the active one has active: true)",
            "security": [{"bearerAuth": []}],
            "responses": {
                "200": {"description": "`{object: list, data: [{id, kind, state, active}]}`"},
                "401": _openai_error("Missing, unknown or revoked API token."),
            },
        }
    },
}
