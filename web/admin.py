"""The admin overview: corpus, traffic, feedback, reviews, jobs; and adding accounts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from assistant import audit
from assistant.errors import AssistantError
from assistant.storage.models import (
    Document,
    Feedback,
    Job,
    Message,
    ModelVersion,
    ReviewItem,
    ReviewState,
    Role,
    User,
)
from assistant.users import create_user
from web.auth import current_user_id, role_required
from web.common import services

bp = Blueprint("admin", __name__)

RECENT_JOBS = 20


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


def recent_jobs(s: Session, limit: int = RECENT_JOBS) -> list[Job]:
    return list(s.scalars(select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)))


@bp.get("/admin")
@role_required(Role.ADMIN)
def index() -> str:
    with services().db.session() as s:
        figures = overview(s)
        jobs = recent_jobs(s)
    return render_template("admin.html", figures=figures, jobs=jobs, roles=list(Role))


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
        flash(str(e), "error")
        return redirect(url_for("admin.index"))
    with services().db.session() as s:
        role = form.get("role", Role.USER.value)
        audit.record(
            s, current_user_id(), "user.create", target=f"user:{user_id}", details={"role": role}
        )
    flash(f"Account {form.get('email', '').strip().lower()} created.")
    return redirect(url_for("admin.index"))
