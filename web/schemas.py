"""The request and response bodies the blueprints share (asking, feedback, conversations,
jobs). One model validates a body and describes it in /openapi.json (web/openapi.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from web.common import MAX_ID

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Bounds the settings set: each ``x-setting`` becomes a reference to a component made from
# the app's settings (web/openapi.py, settings_schemas).
Question = Annotated[
    str,
    Field(min_length=1, max_length=100_000),  # the setting's own ceiling; the core checks it
    WithJsonSchema({"x-setting": "Question"}),
]
Collection = Annotated[str | None, WithJsonSchema({"x-setting": "Collection"})]
Origin = Literal["model", "evidence", "none"]
# Not OpenAPI's date-time (RFC 3339): a time read back from SQLite has no offset.
Timestamp = Annotated[
    datetime,
    WithJsonSchema(
        {"type": "string", "description": "ISO 8601, in UTC (an absent offset means UTC)."}
    ),
]


class Body(BaseModel):
    """A request body: unknown fields are ignored, floats are finite."""

    model_config = ConfigDict(allow_inf_nan=False, frozen=True)


class Error(BaseModel):
    error: str = Field(description="A stable code, e.g. `not_found`.")
    message: str = Field(description="Human readable.")


# ---- asking -----------------------------------------------------------------------------------
class AskRequest(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"question": "What are the symptoms of asthma?"},
                {"question": "How is type 2 diabetes treated?", "collection": "medical"},
            ]
        }
    )

    question: Question
    conversation_id: Id | None = Field(
        None,
        description="Continue this conversation (one of the user's own); absent or null "
        "starts a new one.",
    )
    collection: Collection = None


class Citation(BaseModel):
    n: int = Field(description="The number used as `[n]` in the answer.")
    doc_id: str
    title: str
    start: int = Field(description="Character offset in the document.")
    end: int
    score: float | None = None
    source_url: str | None = None
    collection: str | None = None


class Answer(BaseModel):
    """The stored answer (the `done` event of the stream)."""

    message_id: int
    conversation_id: int
    answer: str
    citations: list[Citation]
    sources: list[Citation] = Field(description="Every source given to the model, cited or not.")
    abstained: bool = Field(
        description="The product said the sources do not answer (and cites nothing)."
    )
    origin: Origin = Field(
        description="model: the model's answer, each sentence checked against its evidence; "
        "evidence: quoted evidence sentences (the model's answer could not be shown); none: "
        "no answer (abstained, or the input guard replied)."
    )
    flagged: bool
    flags: list[str] = []
    held: bool = Field(False, description="Held for review before it is shown.")


def _rating(value: int) -> int:
    if value not in (1, -1):
        raise ValueError("must be 1 or -1")
    return value


def _blank_is_none(value: str | None) -> str | None:
    return (value or "").strip() or None


class FeedbackRequest(Body):
    message_id: Id
    rating: Annotated[int, AfterValidator(_rating), Field(json_schema_extra={"enum": [1, -1]})]
    correction: Annotated[str | None, AfterValidator(_blank_is_none)] = Field(
        None, description="A better answer (blank: none)."
    )
    reason: Annotated[str | None, AfterValidator(_blank_is_none)] = Field(None, max_length=500)


class FeedbackCreated(BaseModel):
    id: int


# ---- conversations and passages ---------------------------------------------------------------
class Message(BaseModel):
    id: int
    role: Literal["user", "assistant"]
    content: str
    citations: list[Citation]
    sources: list[Citation] = []
    origin: Origin | None = None
    flagged: bool
    flags: list[str] = []
    held: bool = False
    created_at: Timestamp
    rating: Literal[1, -1] | None = None
    review: str | None = Field(None, description="The review state of a held answer.")


class Conversation(BaseModel):
    id: int
    title: str
    collection: str | None = None
    updated_at: Timestamp
    messages: list[Message]


class ConversationList(BaseModel):
    conversations: list[Conversation] = Field(description="Newest first; `messages` is empty.")


class PassageQuery(Body):
    start: int = Field(ge=0, le=MAX_ID)
    end: int = Field(ge=0, le=MAX_ID, description="Not before `start`.")


class Passage(BaseModel):
    doc_id: str
    title: str
    source_url: str | None = None
    collection: str | None = None
    before: str = Field("", description="Text just before the passage.")
    passage: str = Field(description="The cited span.")
    after: str = Field("", description="Text just after the passage.")
    start: int
    end: int


# ---- health and jobs --------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool = Field(description="Whether the database answered.")
    loaded: dict[str, bool] = Field(
        {}, description="Which heavy parts this process has loaded so far."
    )


class Readiness(BaseModel):
    ready: bool
    database: bool = Field(description="Whether the database answered.")
    waiting_for: list[str] = Field(
        [], description="The parts still loading (index, llm, embedder, scrubber)."
    )


class Job(BaseModel):
    id: int
    kind: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(ge=0, le=1)
    message: str | None = None
    params: dict[str, Any] = Field(description="What the job was asked to do.")
    result: dict[str, Any] | None = Field(
        description="What it found or made so far (figures, ids, a live loss curve)."
    )
    created_at: Timestamp | None = None
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None


class JobList(BaseModel):
    jobs: list[Job] = Field(description="Newest first.")


class Queued(BaseModel):
    job_id: int = Field(description="Follow it at /api/jobs/{job_id}.")


class Empty(Body):
    """No fields: any JSON object (its fields are ignored)."""
