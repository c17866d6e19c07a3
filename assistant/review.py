"""The review queue: flagged or thumbed-down answers, approved, edited or rejected by staff."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant import audit
from assistant.errors import Conflict, InvalidInput, NotFound
from assistant.storage.models import (
    Conversation,
    Document,
    Feedback,
    Message,
    ReviewItem,
    ReviewState,
    utcnow,
)

logger = logging.getLogger(__name__)

ACTIONS = {
    "approve": ReviewState.APPROVED,
    "edit": ReviewState.EDITED,
    "reject": ReviewState.REJECTED,
}
PAGE_SIZE = 50
MAX_NOTE_CHARS = 2000
MAX_EDIT_CHARS = 20_000


@dataclass(frozen=True)
class QueueFilter:
    """Which pending items to list: one reason and/or one collection (None: any)."""

    reason: str | None = None
    collection: str | None = None


@dataclass(frozen=True)
class PendingItem:
    id: int
    message_id: int
    conversation_id: int
    collection: str | None
    reasons: list[str]
    held: bool
    question: str
    answer: str
    citations: list[dict[str, Any]]
    flags: list[str]
    correction: str | None
    feedback_reason: str | None
    created_at: datetime | None
    sources: list[SourceView] = field(default_factory=list)  # every source given, cited first
    origin: str | None = None  # model, evidence or none (abstained)


@dataclass(frozen=True)
class SourceView:
    """A source the model was given, with the text it read, for the reviewer."""

    n: int
    doc_id: str
    title: str
    source_url: str
    score: float | None
    cited: bool
    text: str  # the span of the document given to the model


@dataclass(frozen=True)
class QueueCounts:
    """What waits, by reason and collection, and every item by state."""

    by_state: dict[str, int]
    by_reason: dict[str, int] = field(default_factory=dict)
    by_collection: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.by_state.get(ReviewState.PENDING.value, 0)


@dataclass(frozen=True)
class Decision:
    id: int
    message_id: int
    state: str
    reviewer_id: int | None
    decided_at: datetime | None


@dataclass(frozen=True)
class ReviewOutcome:
    """What the asker sees of a reviewed or held answer."""

    held: bool
    state: str
    shown_answer: str | None  # None: the stored answer as it is


def _pending_rows(s: Session, flt: QueueFilter) -> list[tuple[ReviewItem, Message, str | None]]:
    query = (
        select(ReviewItem, Message, Conversation.collection)
        .join(Message, ReviewItem.message_id == Message.id)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(ReviewItem.state == ReviewState.PENDING)
        .order_by(ReviewItem.created_at, ReviewItem.id)
    )
    if flt.collection:
        query = query.where(Conversation.collection == flt.collection)
    rows = [(item, message, collection) for item, message, collection in s.execute(query)]
    # Reasons are a JSON list: filtered here, portable across SQLite and PostgreSQL.
    if flt.reason:
        rows = [row for row in rows if flt.reason in [str(r) for r in row[0].reasons]]
    return rows


def pending_items(
    s: Session, flt: QueueFilter | None = None, limit: int = PAGE_SIZE
) -> list[PendingItem]:
    """Oldest pending items first, each with the question it answered and any correction."""
    items = []
    for item, answer, collection in _pending_rows(s, flt or QueueFilter())[:limit]:
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
                collection=collection,
                reasons=[str(r) for r in item.reasons],
                held=item.held,
                question=question or "",
                answer=answer.content,
                citations=[dict(c) for c in answer.citations or []],
                flags=[str(f) for f in answer.flags],
                correction=thumbs_down.correction if thumbs_down else None,
                feedback_reason=thumbs_down.reason if thumbs_down else None,
                created_at=item.created_at,
                sources=source_views(s, answer),
                origin=answer.origin,
            )
        )
    return items


def source_views(s: Session, answer: Message) -> list[SourceView]:
    """Every source given for ``answer`` with its text, the cited ones first."""
    given = [dict(c) for c in (answer.sources or answer.citations or [])]
    cited = {int(c.get("n", 0)) for c in answer.citations or []}
    doc_ids = {str(c.get("doc_id")) for c in given}
    texts = (
        dict(
            s.execute(
                select(Document.doc_id, Document.text).where(Document.doc_id.in_(doc_ids))
            ).all()
        )
        if doc_ids
        else {}
    )
    views = []
    for c in given:
        text = texts.get(str(c.get("doc_id")), "")
        start, end = int(c.get("start", 0)), int(c.get("end", 0))
        views.append(
            SourceView(
                n=int(c.get("n", 0)),
                doc_id=str(c.get("doc_id", "")),
                title=str(c.get("title", "")),
                source_url=str(c.get("source_url", "")),
                score=c.get("score"),
                cited=int(c.get("n", 0)) in cited,
                text=text[start:end] if 0 <= start < end <= len(text) else "",
            )
        )
    return sorted(views, key=lambda v: (not v.cited, v.n))


def queue_counts(s: Session) -> QueueCounts:
    by_state = {state.value: 0 for state in ReviewState}
    for state, n in s.execute(select(ReviewItem.state, func.count()).group_by(ReviewItem.state)):
        by_state[ReviewState(state).value] = n
    by_reason: dict[str, int] = {}
    by_collection: dict[str, int] = {}
    for item, _message, collection in _pending_rows(s, QueueFilter()):
        for reason in {str(r) for r in item.reasons}:
            by_reason[reason] = by_reason.get(reason, 0) + 1
        key = collection or "all"
        by_collection[key] = by_collection.get(key, 0) + 1
    return QueueCounts(
        by_state, dict(sorted(by_reason.items())), dict(sorted(by_collection.items()))
    )


def decide(
    s: Session, item_id: int, reviewer_id: int, action: str, edited_answer: str, note: str
) -> Decision:
    """Record a decision on a pending item, with its audit entry; Conflict if already decided.

    ``edited_answer`` and ``note`` must already be scrubbed of personal data.
    """
    if action not in ACTIONS:
        raise InvalidInput("'action' must be approve, edit or reject.")
    if action == "edit" and not edited_answer.strip():
        raise InvalidInput("An edit needs the edited answer.")
    if len(edited_answer) > MAX_EDIT_CHARS or len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(
            f"The edit is limited to {MAX_EDIT_CHARS} characters and the note to {MAX_NOTE_CHARS}."
        )
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
        details={
            "message_id": item.message_id,
            "state": item.state.value,
            "held": item.held,
            "has_note": item.note is not None,
        },
    )
    logger.info("review item %d: %s by user %d", item_id, item.state.value, reviewer_id)
    return Decision(item.id, item.message_id, item.state.value, item.reviewer_id, item.decided_at)


def outcomes(s: Session, message_ids: list[int]) -> dict[int, ReviewOutcome]:
    """For held answers among ``message_ids``: hidden while pending or after a rejection,
    the reviewer's text after an edit, the stored text after an approval."""
    if not message_ids:
        return {}
    rows = s.scalars(
        select(ReviewItem)
        .where(ReviewItem.message_id.in_(message_ids), ReviewItem.held.is_(True))
        .order_by(ReviewItem.id)
    )
    found: dict[int, ReviewOutcome] = {}
    for item in rows:
        state = item.state
        if state == ReviewState.PENDING:
            found[item.message_id] = ReviewOutcome(True, state.value, "")
        elif state == ReviewState.REJECTED:
            found[item.message_id] = ReviewOutcome(False, state.value, "")
        elif state == ReviewState.EDITED:
            found[item.message_id] = ReviewOutcome(False, state.value, item.edited_answer or "")
        else:
            found[item.message_id] = ReviewOutcome(False, state.value, None)
    return found
