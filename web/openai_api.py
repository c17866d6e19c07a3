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
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.accounts.tokens import verify_token
from assistant.asking.answer import GenerationOptions
from assistant.asking.chat import StreamEvent, Turn
from assistant.asking.conversation import PastTurn
from assistant.errors import AssistantError, InvalidInput, ModelNotFound, ServerBusy, Unauthorized
from assistant.llm import registry
from safety.guards import normalise_question
from web.common import services
from web.errors import error_response, openai_error
from web.openapi import Reply, operation
from web.schemas import Body, Citation, Collection
from web.streaming import event_stream

logger = logging.getLogger(__name__)

bp = Blueprint("openai_api", __name__, url_prefix="/v1")

MAX_MESSAGES = 100
MAX_HISTORY_TURNS = 6  # earlier user turns read to resolve a follow-up
MAX_EARLIER_CHARS = 2000  # of each earlier question
ACTIVE_MODEL_ALIAS = "assistant"


# ---- the bodies -------------------------------------------------------------------------------
class ContentPart(Body):
    type: str = Field(description="Only parts of type `text` are read.")
    text: str = ""


class ChatMessage(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"role": {"not": {"const": "assistant"}}}},
            "then": {
                "required": ["content"],
                "properties": {"content": {"type": ["string", "array"]}},
            },
        }
    )

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = Field(
        None, description="null only in an assistant message (one that called tools)."
    )

    @model_validator(mode="after")
    def _has_content(self) -> ChatMessage:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs a 'content'")
        return self

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: the text ones
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


Tokens = Annotated[int, Field(ge=1, le=4096)]
StopText = Annotated[str, Field(min_length=1, max_length=100)]


class ChatCompletionRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
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
            ]
        }
    )

    model: str | None = Field(
        None,
        description="A model version's name (`GET /v1/models`); `assistant`, null or absent: "
        "the active version. An unknown or rejected one is a 404.",
        examples=[ACTIVE_MODEL_ALIAS],
    )
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=MAX_MESSAGES,
        json_schema_extra={"contains": {"properties": {"role": {"const": "user"}}}},
        description="The last message is the user's question (the setting "
        "safety.max_question_chars bounds it); earlier user messages resolve a follow-up; "
        "system messages are not followed.",
    )
    stream: bool = False
    max_tokens: Tokens | None = Field(
        None, description="Cap on generated tokens; null or absent: the server's setting."
    )
    max_completion_tokens: Tokens | None = Field(None, description="Wins over `max_tokens`.")
    temperature: float | None = Field(None, ge=0, le=2)
    stop: StopText | Annotated[list[StopText], Field(max_length=4)] | None = None
    collection: Collection = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    code: str
    param: str | None = None


class OpenAIError(BaseModel):
    """OpenAI's error shape, for OpenAI's clients (the rest of the product: ``Error``)."""

    error: OpenAIErrorDetail


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, int]
    citations: list[Citation]
    sources: list[Citation] = []
    abstained: bool = False
    origin: str | None = None
    flagged: bool = False
    flags: list[str] = []
    held: bool = False
    message_id: int | None = None
    conversation_id: int | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    kind: str
    state: str
    active: bool
    version_id: int


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


CHUNKS = """With `stream: true`: server-sent events, each `data: <one line of
JSON>` and a blank line: `chat.completion.chunk` objects (the first with the role, then the
text, the last with `finish_reason`, `usage`, `citations` and `sources`), or, when the answer
fails after the stream started, one `{"error": {"message", "type", "code"}}`; then always
`data: [DONE]`."""
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
UNAUTHORIZED = {401: "Missing, unknown or revoked API token."}


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
@operation(
    "The model versions of the registry (the active one has active: true)",
    security=BEARER,
    error_model=OpenAIError,
    ok={200: Reply("Every version", ModelList)},
    errors=UNAUTHORIZED,
)
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
@operation(
    "OpenAI-compatible chat completion, answered from the corpus (RAG)",
    description="The last user message is the question. `stream: true` sends "
    "`chat.completion.chunk` server-sent events ending with `data: [DONE]`; the last chunk "
    "(and the non-streamed answer) carries `citations`, `flagged`, `flags` and `held`. "
    "Needs `Authorization: Bearer <API token>` (`assistant create-token`). 503 with "
    "Retry-After when the model's queue is full.",
    body=ChatCompletionRequest,
    security=BEARER,
    error_model=OpenAIError,
    ok={
        200: Reply(
            "A `chat.completion` (or, with `stream: true`, its chunks).",
            ChatCompletion,
            stream=CHUNKS,
        )
    },
    errors={
        400: "Invalid request.",
        **UNAUTHORIZED,
        404: "No such model version (`model_not_found`).",
        413: "Body over 1 MiB, or prompt and `max_tokens` too long for the model.",
        429: "Too many requests; retry after Retry-After seconds.",
        503: "The model is busy: retry after Retry-After seconds.",
    },
)
def chat_completions(body: ChatCompletionRequest) -> Response:
    question, history = _conversation(body.messages)
    chat = services().chat
    # Validated, guarded and stored before anything streams: bad input is a 4xx here.
    turn = chat.start_turn(
        g.api_token.user_id,
        question,
        None,
        body.collection or None,
        history=history,
        options=_options(body),
    )
    completion_id = f"chatcmpl-{turn.user_message_id}"
    if body.stream:
        return event_stream(
            _chunks(turn, completion_id), services().settings.web.stream_write_timeout_s
        )
    return _complete(turn, completion_id)


def _conversation(messages: list[ChatMessage]) -> tuple[str, list[PastTurn]]:
    """The question (the last user message) and the user turns before it, oldest first.

    System messages are not followed (the product's own instructions stay in force);
    assistant messages are the client's copy of earlier answers.
    """
    users = [m.text() for m in messages if m.role == "user"]
    if not users:
        raise InvalidInput("'messages' holds no user message")
    if messages[-1].role != "user":
        raise InvalidInput("the last message must be the user's question")
    earlier = [q for q in users[:-1] if q.strip()][-MAX_HISTORY_TURNS:]
    return users[-1], [PastTurn(normalise_question(q)[:MAX_EARLIER_CHARS]) for q in earlier]


def _options(body: ChatCompletionRequest) -> GenerationOptions:
    """The OpenAI parameters the product honours: model, max_tokens, temperature, stop."""
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    max_tokens = body.max_completion_tokens
    return GenerationOptions(
        max_tokens=max_tokens if max_tokens is not None else body.max_tokens,
        temperature=body.temperature,
        stop=tuple(stop or ()),
        version=_requested_version(body.model),
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
