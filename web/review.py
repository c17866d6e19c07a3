"""The review queue: flagged or thumbed-down answers, approved, edited or rejected by staff."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant import audit
from assistant.errors import AssistantError, Conflict, InvalidInput, NotFound
from assistant.storage.models import Feedback, Message, ReviewItem, ReviewState, Role, utcnow
from web.auth import current_user_id, role_required
from web.common import json_body, services

bp = Blueprint("review", __name__)

ACTIONS = {
    "approve": ReviewState.APPROVED,
    "edit": ReviewState.EDITED,
    "reject": ReviewState.REJECTED,
}
PAGE_SIZE = 50


@dataclass(frozen=True)
class PendingItem:
    id: int
    message_id: int
    conversation_id: int
    reasons: list[str]
    held: bool
    question: str
    answer: str
    flags: list[str]
    correction: str | None
    feedback_reason: str | None
    created_at: Any


def pending_items(s: Session, limit: int = PAGE_SIZE) -> list[PendingItem]:
    """Oldest pending items first, each with the question it answered and any correction."""
    rows = s.execute(
        select(ReviewItem, Message)
        .join(Message, ReviewItem.message_id == Message.id)
        .where(ReviewItem.state == ReviewState.PENDING)
        .order_by(ReviewItem.created_at, ReviewItem.id)
        .limit(limit)
    ).all()
    items = []
    for item, answer in rows:
        question = s.scalar(
            select(Message.content)
            .where(
                Message.conversation_id == answer.conversation_id,
                Message.id < answer.id,
                Message.role == "user",
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
        thumbs_down = s.scalar(
            select(Feedback)
            .where(Feedback.message_id == answer.id, Feedback.rating == -1)
            .order_by(Feedback.id.desc())
            .limit(1)
        )
        items.append(
            PendingItem(
                id=item.id,
                message_id=answer.id,
                conversation_id=answer.conversation_id,
                reasons=[str(r) for r in item.reasons],
                held=item.held,
                question=question or "",
                answer=answer.content,
                flags=[str(f) for f in answer.flags],
                correction=thumbs_down.correction if thumbs_down else None,
                feedback_reason=thumbs_down.reason if thumbs_down else None,
                created_at=item.created_at,
            )
        )
    return items


def state_counts(s: Session) -> dict[str, int]:
    counts = {state.value: 0 for state in ReviewState}
    for state, n in s.execute(select(ReviewItem.state, func.count()).group_by(ReviewItem.state)):
        counts[ReviewState(state).value] = n
    return counts


def decide(
    s: Session, item_id: int, reviewer_id: int, action: str, edited_answer: str, note: str
) -> ReviewItem:
    """Record a decision on a pending item, with its audit entry; Conflict if already decided."""
    if action not in ACTIONS:
        raise InvalidInput("'action' must be approve, edit or reject.")
    if action == "edit" and not edited_answer.strip():
        raise InvalidInput("An edit needs the edited answer.")
    # Conditional update: of two reviewers deciding at once, exactly one wins.
    result = s.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, ReviewItem.state == ReviewState.PENDING)
        .values(
            state=ACTIONS[action],
            reviewer_id=reviewer_id,
            decided_at=utcnow(),
            edited_answer=edited_answer.strip() if action == "edit" else None,
            note=note.strip() or None,
        )
    )
    item = s.get(ReviewItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"No review item {item_id}.")
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(f"Review item {item_id} was already decided ({item.state.value}).")
    audit.record(
        s,
        reviewer_id,
        f"review.{action}",
        target=f"review_item:{item_id}",
        details={"message_id": item.message_id, "state": item.state.value},
    )
    return item


def _scrubbed(text: str | None) -> str:
    if not text or not text.strip():
        return ""
    return services().scrubber.scrub(text)


@bp.get("/review")
@role_required(Role.REVIEWER, Role.ADMIN)
def queue() -> str:
    with services().db.session() as s:
        items = pending_items(s)
        counts = state_counts(s)
    return render_template("review.html", items=items, counts=counts)


@bp.post("/review/<int:item_id>")
@role_required(Role.REVIEWER, Role.ADMIN)
def review_item(item_id: int) -> Any:
    body = json_body() if request.is_json else request.form
    fields = {k: body.get(k) for k in ("action", "edited_answer", "note")}
    if not all(v is None or isinstance(v, str) for v in fields.values()):
        raise InvalidInput("'action', 'edited_answer' and 'note' must be strings.")
    action = fields["action"] or ""
    try:
        # Stored free text is scrubbed of personal data first, as everywhere in the product;
        # the answer text only matters for an edit.
        edited = _scrubbed(fields["edited_answer"]) if action == "edit" else ""
        note = _scrubbed(fields["note"])
        with services().db.session() as s:
            item = decide(s, item_id, current_user_id(), action, edited, note)
    except AssistantError as e:
        if request.is_json:
            raise
        flash(str(e), "error")  # a form post goes back to the queue with the reason
        return redirect(url_for("review.queue"))
    if request.is_json:
        return jsonify(
            id=item.id,
            state=item.state.value,
            reviewer_id=item.reviewer_id,
            decided_at=item.decided_at,
        )
    flash(f"Review item {item.id}: {item.state.value}.")
    return redirect(url_for("review.queue"))
