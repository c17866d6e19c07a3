"""The review queue pages and endpoint for reviewers and admins (logic in
assistant.review.queue)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from pydantic import BaseModel, Field

from assistant.errors import AssistantError, InvalidInput
from assistant.review import queue as review
from assistant.storage.models import Role
from web.auth import current_user_id, role_required
from web.common import MAX_ID, services, to_json
from web.openapi import Reply, operation
from web.schemas import Body, Timestamp

bp = Blueprint("review", __name__)

MAX_FILTER_CHARS = 100
MAX_PAGE = 100_000


class QueueQuery(Body):
    reason: str | None = Field(None, max_length=MAX_FILTER_CHARS)
    collection: str | None = Field(None, max_length=MAX_FILTER_CHARS)
    page: int = Field(1, ge=1, le=MAX_PAGE)


class QueueCounts(BaseModel):
    by_state: dict[str, int]
    by_reason: dict[str, int]
    by_collection: dict[str, int]


class ReviewQueue(BaseModel):
    items: list[dict[str, Any]] = Field(description="Oldest first, with their reasons.")
    page: int
    total: int
    counts: QueueCounts


class ReviewDecision(Body):
    # The action is checked by the review queue itself, so that a form post with a wrong one
    # goes back to the queue with the reason, as its other refusals do.
    action: str = Field(json_schema_extra={"enum": list(review.ACTIONS)})
    edited_answer: str | None = Field(None, max_length=review.MAX_EDIT_CHARS)
    note: str | None = Field(None, max_length=review.MAX_NOTE_CHARS)
    feedback_id: int | None = Field(
        None, ge=-MAX_ID, le=MAX_ID, description="The correction `accept_correction` accepts."
    )


class Decided(BaseModel):
    id: int
    message_id: int
    state: str
    reviewer_id: int | None
    decided_at: Timestamp | None


def _filter() -> review.QueueFilter:
    reason = request.args.get("reason", "").strip()[:MAX_FILTER_CHARS] or None
    collection = request.args.get("collection", "").strip()[:MAX_FILTER_CHARS] or None
    return review.QueueFilter(reason=reason, collection=collection)


def _scrubbed(text: str | None) -> str:
    if not text or not text.strip():
        return ""
    return services().scrubber.scrub(text)


def _page() -> int:
    page = request.args.get("page", 1, type=int) or 1
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput("'page' must be a page number from 1.")
    return page


@bp.get("/review")
@role_required(Role.REVIEWER, Role.ADMIN)
def queue() -> str:
    flt, page = _filter(), _page()
    with services().db.session() as s:
        offset = (page - 1) * review.PAGE_SIZE
        items = review.pending_items(s, flt, viewer_id=current_user_id(), offset=offset)
        total = review.pending_count(s, flt, viewer_id=current_user_id())
        counts = review.queue_counts(s)
    return render_template(
        "review.html",
        items=items,
        counts=counts,
        flt=flt,
        collections=services().settings.collections,
        page=page,
        pages=max(1, -(-total // review.PAGE_SIZE)),
        total=total,
    )


@bp.get("/api/review")
@role_required(Role.REVIEWER, Role.ADMIN)
@operation(
    "Pending review items with their reasons, and counts (reviewer, admin)",
    query=QueueQuery,
    ok={200: Reply("Oldest first", ReviewQueue)},
    errors=(400, 401, 403),
)
def queue_json(query: QueueQuery) -> Any:
    flt = review.QueueFilter(
        reason=(query.reason or "").strip() or None,
        collection=(query.collection or "").strip() or None,
    )
    with services().db.session() as s:
        offset = (query.page - 1) * review.PAGE_SIZE
        items = review.pending_items(s, flt, viewer_id=current_user_id(), offset=offset)
        total = review.pending_count(s, flt, viewer_id=current_user_id())
        counts = review.queue_counts(s)
    return jsonify(
        items=to_json(items),
        page=query.page,
        total=total,
        counts={
            "by_state": counts.by_state,
            "by_reason": counts.by_reason,
            "by_collection": counts.by_collection,
        },
    )


@bp.post("/review/<int:item_id>")
@role_required(Role.REVIEWER, Role.ADMIN)
@operation(
    "Approve, edit, accept a user's correction, or reject a pending item",
    description="Only an approved answer, a reviewer's edit, or a user correction the "
    "reviewer accepted (`accept_correction` with its `feedback_id`, made before the "
    "decision) becomes training data; a rejection trains nothing. Nobody reviews answers to "
    "their own questions (403). A form post (with `csrf_token`) redirects back to the "
    "queue; a JSON body (with the `X-CSRFToken` header) gets JSON.",
    body=ReviewDecision,
    form=True,
    csrf=True,
    ok={200: Reply("Decided", Decided)},
    errors=(400, 401, 403, 404, 409),
)
def review_item(item_id: int, body: ReviewDecision) -> Any:
    try:
        # Stored free text is scrubbed of personal data first, as everywhere in the product;
        # the answer text only matters for an edit.
        edited = _scrubbed(body.edited_answer) if body.action == "edit" else ""
        note = _scrubbed(body.note)
        with services().db.session() as s:
            decision = review.decide(
                s, item_id, current_user_id(), body.action, edited, note, body.feedback_id
            )
    except AssistantError as e:
        if request.is_json:
            raise
        flash(str(e), "error")  # a form post goes back to the queue with the reason
        return redirect(url_for("review.queue"))
    if request.is_json:
        return jsonify(to_json(decision))
    flash(f"Review item {decision.id}: {decision.state}.")
    return redirect(request.referrer if _same_site(request.referrer) else url_for("review.queue"))


def _same_site(url: str | None) -> bool:
    """Whether the Referer is a page of the review queue on this site (keeps the filters)."""
    if not url:
        return False
    root = request.host_url.rstrip("/")
    return url.startswith(root + "/review") and "\\" not in url
