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
from datetime import date
from typing import Any, Literal

from flask import Blueprint, Response, abort, jsonify, request
from pydantic import BaseModel, Field, model_validator
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
from web.common import job_json, send_task, services, status_for, to_json
from web.openapi import Reply, operation
from web.schemas import (
    Answer,
    AskRequest,
    Body,
    Conversation,
    ConversationList,
    FeedbackCreated,
    FeedbackRequest,
    Health,
    Job,
    JobList,
    Queued,
    Readiness,
    Timestamp,
)

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

# Methods with a body: only JSON, so a cross-site form cannot send them. DELETE carries no
# body and is never a "simple" request: a browser asks the server's leave first (CORS
# preflight), which this app never grants.
BODY_METHODS = {"POST", "PUT", "PATCH"}
MAX_API_UPLOAD_FILES = 20
ADMIN_ERRORS = (400, 401, 403)
# What must be loaded before a process answers at full speed (the index too, once one exists).
READY_PARTS = ("scrubber", "llm", "embedder")


@bp.before_request
def require_json() -> None:
    if request.method in BODY_METHODS and not request.is_json:
        abort(415, "Send a JSON body with Content-Type: application/json.")


@bp.get("/health")
@operation(
    "Liveness and database reachability",
    security=[],
    ok={
        200: Reply("Up", Health),
        503: Reply("The database is unreachable", Health),
    },
)
def health() -> tuple[Response, int]:
    database = _database_answers()
    loaded = {name: services().loaded(name) for name in ("embedder", "index", "llm", "scrubber")}
    status = "ok" if database else "degraded"
    return jsonify(status=status, database=database, loaded=loaded), 200 if database else 503


@bp.get("/ready")
@operation(
    "Readiness: whether this process answers at full speed now",
    security=[],
    ok={
        200: Reply("Models and index loaded, database reachable", Readiness),
        503: Reply("Still loading, or the database is unreachable", Readiness),
    },
)
def ready() -> tuple[Response, int]:
    # /api/health says the process is alive. A load balancer asks this instead: a host that
    # restarts is live at once but would make its first users wait for the models to load.
    database = _database_answers()
    waiting = [name for name in READY_PARTS if not services().loaded(name)]
    if not waiting and services().index.exists() and services().index.loaded_name() is None:
        waiting.append("index")
    is_ready = database and not waiting
    return jsonify(ready=is_ready, database=database, waiting_for=waiting), (
        200 if is_ready else 503
    )


def _database_answers() -> bool:
    try:
        with services().db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        logger.exception("Health check: the database is unreachable")
        return False
    return True


@bp.get("/conversations")
@role_required()
@operation(
    "The signed-in user's conversations",
    ok={200: Reply("Newest first", ConversationList)},
    errors=(401,),
)
def conversations() -> Response:
    views = services().history.list_conversations(current_user_id())
    return jsonify(conversations=to_json(views))


@bp.get("/conversations/<int:conversation_id>")
@role_required()
@operation(
    "One of the signed-in user's conversations, with its messages",
    ok={200: Reply("Found", Conversation)},
    errors=(401, 404),
)
def conversation(conversation_id: int) -> Response:
    return jsonify(to_json(services().history.get_conversation(current_user_id(), conversation_id)))


@bp.post("/ask")
@role_required()
@operation(
    "Ask a question and wait for the whole answer",
    body=AskRequest,
    ok={200: Reply("The stored, cited answer", Answer)},
    errors=(400, 401, 403, 404, 413, 415, 429, 500, 503),
)
def ask(body: AskRequest) -> Any:
    chat = services().chat
    turn = chat.start_turn(
        current_user_id(), body.question, body.conversation_id, body.collection or None
    )
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
@operation(
    "Thumbs up/down on an answer, with an optional correction",
    body=FeedbackRequest,
    ok={201: Reply("Stored", FeedbackCreated)},
    errors=(400, 401, 404, 413, 415),
)
def feedback(body: FeedbackRequest) -> tuple[Response, int]:
    feedback_id = services().feedback.add_feedback(current_user_id(), **body.model_dump())
    return jsonify(id=feedback_id), 201


# ---- admin ------------------------------------------------------------------------------------
Page = Field(1, ge=1, le=1_000_000)


class JobsQuery(Body):
    kind: str | None = Field(None, max_length=50)


class DocumentsQuery(Body):
    collection: str | None = Field(None, max_length=50)
    q: str | None = Field(None, max_length=200, description="Title or id contains.")
    page: int = Page


class AuditQuery(Body):
    action: str | None = Field(
        None,
        max_length=100,
        description="An exact action, or a prefix ending in a dot (`review.`).",
    )
    page: int = Page


class QualityQuery(Body):
    days: int = Field(14, ge=1, le=365)


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


@bp.get("/jobs")
@role_required(Role.ADMIN)
@operation(
    "Recent background jobs with their progress (admin)",
    query=JobsQuery,
    ok={200: Reply("Newest first", JobList)},
    errors=ADMIN_ERRORS,
)
def jobs(query: JobsQuery) -> Response:
    with services().db.session() as s:
        return jsonify(jobs=[job_json(job) for job in recent_jobs(s, kind=_text(query.kind))])


@bp.get("/jobs/<int:job_id>")
@role_required(Role.ADMIN)
@operation(
    "One background job with its progress and result (admin)",
    ok={200: Reply("Found", Job)},
    errors=(401, 403, 404),
)
def job(job_id: int) -> Response:
    return jsonify(job_json(job_rows.get_job(services().db, job_id)))


class DocumentRow(BaseModel):
    doc_id: str
    title: str
    collection: str
    source_url: str
    n_chunks: int
    updated_at: Timestamp | None


class DocumentPage(BaseModel):
    documents: list[DocumentRow]
    total: int
    page: int
    pages: int


@bp.get("/admin/documents")
@role_required(Role.ADMIN)
@operation(
    "Documents of the corpus, by title (admin)",
    query=DocumentsQuery,
    ok={200: Reply("One page", DocumentPage)},
    errors=ADMIN_ERRORS,
)
def documents(query: DocumentsQuery) -> Response:
    with services().db.session() as s:
        page = corpus_documents.list_documents(
            s, _text(query.collection), _text(query.q), query.page
        )
    return jsonify(to_json(page))


class DocumentDetail(BaseModel):
    document: dict[str, Any]
    chunks: list[dict[str, Any]] = Field(description="Its chunks in the index in service.")


@bp.get("/admin/documents/<path:doc_id>")
@role_required(Role.ADMIN)
@operation(
    "One document and its chunks in the index in service (admin)",
    ok={200: Reply("Found", DocumentDetail)},
    errors=(401, 403, 404),
)
def document(doc_id: str) -> Response:
    with services().db.session() as s:
        row = corpus_documents.get_document(s, doc_id)
    chunks = corpus_documents.document_chunks(services(), doc_id)
    return jsonify(document=to_json(row), chunks=to_json(chunks))


class UploadedFile(Body):
    filename: str
    text: str | None = None
    base64: str | None = Field(None, description="For a PDF.")

    @model_validator(mode="after")
    def _one_content(self) -> UploadedFile:
        if (self.text is None) == (self.base64 is None):
            raise ValueError("needs exactly one of 'text' or 'base64'")
        return self

    def data(self) -> bytes:
        if self.text is not None:
            try:
                return self.text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
                raise InvalidInput(f"{self.filename!r}: the text is not valid Unicode.") from None
        try:
            return base64.b64decode(self.base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("A file's base64 is not valid base64.") from None


class UploadRequest(Body):
    collection: str
    files: list[UploadedFile] = Field(min_length=1, max_length=MAX_API_UPLOAD_FILES)


class Uploaded(Queued):
    files: list[str]


@bp.post("/admin/documents")
@role_required(Role.ADMIN)
@operation(
    "Upload corpus files into a collection and index them as a job (admin)",
    description="Each file gives its `filename` (.jsonl, .txt, .md, .html, .pdf) and "
    f"either `text` or `base64` (for a PDF). Up to {MAX_API_UPLOAD_FILES} files, "
    f"{uploads.MAX_UPLOAD_BYTES // 2**20} MiB each, a body of "
    f"{uploads.MAX_UPLOAD_REQUEST // 2**20} MiB in all; all are stored or none; a "
    "same-named upload is replaced.",
    body=UploadRequest,
    ok={202: Reply("Stored and queued; follow the job at /api/jobs/{job_id}", Uploaded)},
    errors=(400, 401, 403, 413, 415),
)
def upload_documents(body: UploadRequest) -> tuple[Response, int]:
    """Files given in JSON (``text``, or ``base64`` for a PDF), stored and indexed as a job."""
    files = [(f.filename, io.BytesIO(f.data())) for f in body.files]
    paths = uploads.save_uploads(services(), body.collection, files)
    job_id = uploads.start_ingest(
        services(), send_task(), body.collection, paths, current_user_id(), "upload"
    )
    return jsonify(job_id=job_id, files=[p.name for p in paths]), 202


class ReindexRequest(Body):
    collection: str


@bp.post("/admin/reindex")
@role_required(Role.ADMIN)
@operation(
    "Re-index a collection's uploaded files as a background job (admin)",
    body=ReindexRequest,
    ok={202: Reply("Queued; follow it at /api/jobs/{job_id}", Queued)},
    errors=(400, 401, 403, 415),
)
def reindex(body: ReindexRequest) -> tuple[Response, int]:
    paths = uploads.uploaded_files(services(), body.collection)
    job_id = uploads.start_ingest(
        services(), send_task(), body.collection, paths, current_user_id(), "reindex"
    )
    return jsonify(job_id=job_id), 202


class DayCounts(BaseModel):
    day: date
    questions: int
    thumbs_up: int
    thumbs_down: int
    flagged: int


class VersionRate(BaseModel):
    version: str
    thumbs_up: int
    thumbs_down: int
    rate: float | None


class QualityFigures(BaseModel):
    days: list[DayCounts]
    versions: list[VersionRate] = Field(description="Thumbs-up rate per model version.")
    flag_reasons: dict[str, int]


@bp.get("/admin/quality")
@role_required(Role.ADMIN)
@operation(
    "Counts per day, thumbs-up rate per model version, flag reasons (admin)",
    query=QualityQuery,
    ok={200: Reply("Figures", QualityFigures)},
    errors=ADMIN_ERRORS,
)
def quality(query: QualityQuery) -> Response:
    with services().db.session() as s:
        figures = quality_figures.quality(s, query.days)
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


RoleName = Literal["user", "reviewer", "admin"]


class Account(BaseModel):
    id: int
    email: str
    role: RoleName
    is_active: bool
    created_at: Timestamp | None = None
    conversations: int = 0


class AccountList(BaseModel):
    users: list[Account] = Field(description="By email.")


class AccountChange(Body):
    role: RoleName | None = None
    active: bool | None = Field(None, description="false: the account cannot sign in.")


class RemovedAccount(BaseModel):
    """What went with the account; its content is gone."""

    user_id: int
    conversations: int
    messages: int
    feedback: int
    review_items: int
    api_tokens: int
    cached_answers: int


@bp.get("/admin/users")
@role_required(Role.ADMIN)
@operation(
    "Accounts with their roles (admin)",
    ok={200: Reply("By email", AccountList)},
    errors=(401, 403),
)
def users() -> Response:
    with services().db.session() as s:
        return jsonify(users=to_json(roles.list_accounts(s)))


@bp.patch("/admin/users/<int:user_id>")
@role_required(Role.ADMIN)
@operation(
    "Change an account's role or whether it may sign in (admin)",
    body=AccountChange,
    ok={200: Reply("Changed", Account)},
    errors=(400, 401, 403, 404, 409, 415),
)
def update_user(user_id: int, body: AccountChange) -> Response:
    with services().db.session() as s:
        account = roles.update_account(s, current_user_id(), user_id, body.role, body.active)
    return jsonify(to_json(account))


@bp.delete("/admin/users/<int:user_id>")
@role_required(Role.ADMIN)
@operation(
    "Remove an account with its conversations, feedback, tokens and cached answers (admin); "
    "the last active admin stays",
    ok={200: Reply("Removed", RemovedAccount)},
    errors=(401, 403, 404, 409),
)
def delete_user(user_id: int) -> Response:
    removed = remove_account(services().db, user_id, current_user_id(), services().answer_cache)
    return jsonify(to_json(removed))


class AuditRow(BaseModel):
    id: int
    created_at: Timestamp | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditRow]
    actions: list[str]
    page: int
    pages: int
    total: int


@bp.get("/admin/audit")
@role_required(Role.ADMIN)
@operation(
    "The audit log, newest first (admin)",
    query=AuditQuery,
    ok={200: Reply("One page", AuditPage)},
    errors=ADMIN_ERRORS,
)
def audit_log(query: AuditQuery) -> Response:
    with services().db.session() as s:
        page = audit.audit_log(s, _text(query.action), query.page)
    return jsonify(to_json(page))
