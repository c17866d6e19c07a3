"""The review queue pages and endpoint for reviewers and admins (logic in
assistant.review.queue)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from assistant.errors import AssistantError, InvalidInput
from assistant.review import queue as review
from assistant.storage.models import Role
from web.auth import current_user_id, role_required
from web.common import json_body, services, to_json
from web.openapi import errors, json_response

bp = Blueprint("review", __name__)

MAX_FILTER_CHARS = 100


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
    if not 1 <= page <= 100_000:
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
def queue_json() -> Any:
    flt, page = _filter(), _page()
    with services().db.session() as s:
        offset = (page - 1) * review.PAGE_SIZE
        items = review.pending_items(s, flt, viewer_id=current_user_id(), offset=offset)
        total = review.pending_count(s, flt, viewer_id=current_user_id())
        counts = review.queue_counts(s)
    return jsonify(
        items=to_json(items),
        page=page,
        total=total,
        counts={
            "by_state": counts.by_state,
            "by_reason": counts.by_reason,
            "by_collection": counts.by_collection,
        },
    )


@bp.post("/review/<int:item_id>")
@role_required(Role.REVIEWER, Role.ADMIN)
def review_item(item_id: int) -> Any:
    body = json_body() if request.is_json else request.form
    fields = {k: body.get(k) for k in ("action", "edited_answer", "note")}
    if not all(v is None or isinstance(v, str) for v in fields.values()):
        raise InvalidInput("'action', 'edited_answer' and 'note' must be strings.")
    action = fields["action"] or ""
    feedback_id = _feedback_id(body.get("feedback_id"))
    # Lengths before the PII pass: its work grows with the text.
    if len(fields["edited_answer"] or "") > review.MAX_EDIT_CHARS or (
        len(fields["note"] or "") > review.MAX_NOTE_CHARS
    ):
        raise InvalidInput(
            f"The edit is limited to {review.MAX_EDIT_CHARS} characters and the note to "
            f"{review.MAX_NOTE_CHARS}."
        )
    try:
        # Stored free text is scrubbed of personal data first, as everywhere in the product;
        # the answer text only matters for an edit.
        edited = _scrubbed(fields["edited_answer"]) if action == "edit" else ""
        note = _scrubbed(fields["note"])
        with services().db.session() as s:
            decision = review.decide(
                s, item_id, current_user_id(), action, edited, note, feedback_id
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


def _feedback_id(value: object) -> int | None:
    """The correction a reviewer accepts (a form sends it as text, JSON as a number)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput("'feedback_id' must be an integer.")
    try:
        return int(value)
    except ValueError:
        raise InvalidInput("'feedback_id' must be an integer.") from None


def _same_site(url: str | None) -> bool:
    """Whether the Referer is a page of the review queue on this site (keeps the filters)."""
    if not url:
        return False
    root = request.host_url.rstrip("/")
    return url.startswith(root + "/review") and "\\" not in url


OPENAPI_PATHS: dict[str, Any] = {
    "/api/review": {
        "get": {
            "summary": "Pending review items with their reasons, and counts (reviewer, admin)",
            "parameters": [
                {"name": "reason", "in": "query", "schema": {"type": "string"}},
                {"name": "collection", "in": "query", "schema": {"type": "string"}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            ],
            "responses": {
                "200": json_response({"type": "object"}, "Oldest first"),
                **errors(401, 403),
            },
        }
    },
    "/review/{item_id}": {
        "post": {
            "summary": "Approve, edit, accept a user's correction, or reject a pending item",
            "description": "Only an approved answer, a reviewer's edit, or a user correction "
            "the reviewer accepted (`accept_correction` with its `feedback_id`, made before "
            "the decision) becomes training data; a rejection trains nothing. Nobody reviews "
            "answers to their own questions (403). A form post (with `csrf_token`) redirects "
            "back to the queue; a JSON body (with the `X-CSRFToken` header) gets JSON.",
            "parameters": [
                {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "X-CSRFToken",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["action"],
                            "properties": {
                                "action": {"type": "string", "enum": list(review.ACTIONS)},
                                "edited_answer": {"type": "string"},
                                "note": {"type": "string"},
                                "feedback_id": {"type": "integer"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": json_response({"type": "object"}, "Decided"),
                **errors(400, 401, 403, 404, 409),
            },
        }
    },
}
