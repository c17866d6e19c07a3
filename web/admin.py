"""The control room for admins: overview, corpus, quality, accounts and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from assistant.accounts import roles
from assistant.accounts.removal import remove_account
from assistant.accounts.users import create_user
from assistant.corpus import documents as corpus_documents
from assistant.corpus import uploads
from assistant.errors import AssistantError, InvalidInput
from assistant.evaluation import quality as quality_figures
from assistant.infra import audit
from assistant.storage.models import (
    Document,
    Feedback,
    Job,
    JobKind,
    Message,
    ModelVersion,
    ReviewItem,
    ReviewState,
    Role,
    User,
)
from web.auth import current_user_id, role_required
from web.common import send_task, services

bp = Blueprint("admin", __name__)

RECENT_JOBS = 20
UPLOAD_ENDPOINTS = {"admin.upload", "api.upload_documents"}


@dataclass(frozen=True)
class CollectionCount:
    collection: str
    documents: int
    chunks: int


def overview(s: Session) -> dict[str, Any]:
    """The figures on the admin page."""
    collections = [
        CollectionCount(name, docs, int(chunks or 0))
        for name, docs, chunks in s.execute(
            select(Document.collection, func.count(), func.sum(Document.n_chunks))
            .group_by(Document.collection)
            .order_by(Document.collection)
        )
    ]
    messages = dict(s.execute(select(Message.role, func.count()).group_by(Message.role)).all())
    ratings = dict(s.execute(select(Feedback.rating, func.count()).group_by(Feedback.rating)).all())
    users = dict(s.execute(select(User.role, func.count()).group_by(User.role)).all())
    active_model = s.scalar(select(ModelVersion.name).where(ModelVersion.is_active).limit(1))
    return {
        "collections": collections,
        "documents": sum(c.documents for c in collections),
        "chunks": sum(c.chunks for c in collections),
        "questions": messages.get("user", 0),
        "answers": messages.get("assistant", 0),
        "flagged": s.scalar(select(func.count()).where(Message.flagged)) or 0,
        "thumbs_up": ratings.get(1, 0),
        "thumbs_down": ratings.get(-1, 0),
        "pending_reviews": s.scalar(
            select(func.count()).where(ReviewItem.state == ReviewState.PENDING)
        )
        or 0,
        "users": {Role(role).value: n for role, n in users.items()},
        "active_model": active_model,
    }


def recent_jobs(s: Session, limit: int = RECENT_JOBS, kind: str | None = None) -> list[Job]:
    query = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if kind:
        query = query.where(Job.kind == kind)
    return list(s.scalars(query))


def _page_arg() -> int:
    page = request.args.get("page", 1, type=int)
    return page if page and page > 0 else 1


def _text_arg(name: str, limit: int = 200) -> str | None:
    return request.args.get(name, "").strip()[:limit] or None


def _back(endpoint: str, error: AssistantError) -> Response:
    flash(str(error), "error")
    return redirect(url_for(endpoint))


@bp.get("/admin")
@role_required(Role.ADMIN)
def index() -> str:
    with services().db.session() as s:
        figures = overview(s)
        jobs = recent_jobs(s)
    return render_template("admin.html", figures=figures, jobs=jobs, roles=list(Role))


# ---- corpus ----------------------------------------------------------------------------------
@bp.get("/admin/corpus")
@role_required(Role.ADMIN)
def corpus() -> str:
    collection = _text_arg("collection")
    query = _text_arg("q")
    with services().db.session() as s:
        documents = corpus_documents.list_documents(s, collection, query, _page_arg())
        figures = overview(s)
        jobs = recent_jobs(s, kind=JobKind.INGEST)
    collections = services().settings.collections
    uploaded = {c: uploads.uploaded_files(services(), c) for c in collections}
    return render_template(
        "admin_corpus.html",
        documents=documents,
        figures=figures,
        jobs=jobs,
        uploads=uploaded,
        collections=collections,
        collection=collection,
        query=query,
        max_upload_mib=uploads.MAX_UPLOAD_BYTES // 2**20,
    )


@bp.post("/admin/corpus/upload")
@role_required(Role.ADMIN)
def upload() -> Response:
    collection = request.form.get("collection", "")
    files = [f for f in request.files.getlist("files") if f and f.filename]
    try:
        if not files:
            raise InvalidInput("Choose at least one file to upload.")
        paths = uploads.save_uploads(
            services(), collection, [(f.filename or "", f.stream) for f in files]
        )
        job_id = uploads.start_ingest(
            services(), send_task(), collection, paths, current_user_id(), "upload"
        )
    except AssistantError as e:
        return _back("admin.corpus", e)
    flash(f"Uploaded {len(paths)} file(s); indexing as job {job_id}.")
    return redirect(url_for("admin.corpus", _anchor="jobs"))


@bp.post("/admin/corpus/reindex")
@role_required(Role.ADMIN)
def reindex() -> Response:
    collection = request.form.get("collection", "")
    try:
        paths = uploads.uploaded_files(services(), collection)
        job_id = uploads.start_ingest(
            services(), send_task(), collection, paths, current_user_id(), "reindex"
        )
    except AssistantError as e:
        return _back("admin.corpus", e)
    flash(f"Re-indexing the uploads of {collection} as job {job_id}.")
    return redirect(url_for("admin.corpus", _anchor="jobs"))


@bp.get("/admin/corpus/documents/<path:doc_id>")
@role_required(Role.ADMIN)
def document(doc_id: str) -> str:
    with services().db.session() as s:
        row = corpus_documents.get_document(s, doc_id)
    chunks = corpus_documents.document_chunks(services(), doc_id)
    return render_template("admin_document.html", document=row, chunks=chunks)


@bp.post("/admin/corpus/documents/<path:doc_id>/delete")
@role_required(Role.ADMIN)
def delete_document(doc_id: str) -> Response:
    """Remove a document from the index (a new version) and the registry."""
    from assistant.corpus.ingest import delete_documents

    with services().db.session() as s:
        row = corpus_documents.get_document(s, doc_id)
    delete_documents(services(), [doc_id])
    with services().db.session() as s:
        audit.record(s, current_user_id(), "corpus.delete", target=f"document:{doc_id}")
    flash(f"Deleted {row.title or doc_id} from the corpus and the index.")
    return redirect(url_for("admin.corpus", collection=row.collection))


# ---- feedback and quality --------------------------------------------------------------------
@bp.get("/admin/quality")
@role_required(Role.ADMIN)
def quality() -> str:
    days = request.args.get("days", 14, type=int) or 14
    if not 1 <= days <= 365:
        abort(400, "'days' must be between 1 and 365.")
    with services().db.session() as s:
        figures = quality_figures.quality(s, days)
    return render_template("admin_quality.html", quality=figures, days=days)


# ---- accounts --------------------------------------------------------------------------------
@bp.get("/admin/users")
@role_required(Role.ADMIN)
def users() -> str:
    with services().db.session() as s:
        accounts = roles.list_accounts(s)
    return render_template("admin_users.html", accounts=accounts, roles=list(Role))


@bp.post("/admin/users")
@role_required(Role.ADMIN)
def add_user() -> Response:
    form = request.form
    try:
        user_id = create_user(
            services().db,
            form.get("email", ""),
            form.get("password", ""),
            form.get("role", Role.USER.value),
        )
    except AssistantError as e:
        return _back("admin.users", e)
    with services().db.session() as s:
        role = form.get("role", Role.USER.value)
        audit.record(
            s, current_user_id(), "user.create", target=f"user:{user_id}", details={"role": role}
        )
    flash(f"Account {form.get('email', '').strip().lower()} created.")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<int:user_id>")
@role_required(Role.ADMIN)
def update_user(user_id: int) -> Response:
    active = request.form.get("active")
    try:
        with services().db.session() as s:
            account = roles.update_account(
                s,
                current_user_id(),
                user_id,
                request.form.get("role") or None,
                None if active is None else active == "1",
            )
    except AssistantError as e:
        return _back("admin.users", e)
    state = "active" if account.is_active else "disabled"
    flash(f"{account.email}: {account.role}, {state}.")
    return redirect(url_for("admin.users"))


@bp.post("/admin/users/<int:user_id>/delete")
@role_required(Role.ADMIN)
def delete_user(user_id: int) -> Response:
    """Remove an account and everything it wrote (assistant/accounts/removal.py)."""
    try:
        removed = remove_account(services().db, user_id, current_user_id(), services().answer_cache)
    except AssistantError as e:
        return _back("admin.users", e)
    flash(
        f"Account {user_id} deleted with {removed.conversations} conversation(s) and "
        f"{removed.feedback} feedback item(s)."
    )
    if user_id == current_user_id():
        return redirect(url_for("auth.login"))
    return redirect(url_for("admin.users"))


# ---- audit log -------------------------------------------------------------------------------
@bp.get("/admin/audit")
@role_required(Role.ADMIN)
def audit_log() -> str:
    action = _text_arg("action", 100)
    with services().db.session() as s:
        page = audit.audit_log(s, action, _page_arg())
    return render_template("admin_audit.html", log=page, action=action)
