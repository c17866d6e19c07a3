"""The review queue: flagged or thumbed-down answers, approved, edited or rejected by staff."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant.errors import Conflict, Forbidden, InvalidInput, NotFound
from assistant.infra import audit
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
    # A user's correction, shown to the reviewer word for word, taken as the answer.
    "accept_correction": ReviewState.EDITED,
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
    created_at: datetime | None
    sources: list[SourceView] = field(default_factory=list)  # every source given, cited first
    origin: str | None = None  # model, evidence or none (abstained)
    # Every thumbs-down with a correction or a reason on this answer, oldest first: a later
    # one never hides an earlier one from the reviewer.
    corrections: list[CorrectionView] = field(default_factory=list)
    repeats: int = 0  # more questions of the same user the guard answered for the same reasons


@dataclass(frozen=True)
class CorrectionView:
    """A user's thumbs-down on the answer, as the reviewer sees it."""

    feedback_id: int
    correction: str | None  # the exact text that "accept" would make the answer
    reason: str | None
    created_at: datetime | None


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


def _pending_rows(
    s: Session, flt: QueueFilter, viewer_id: int | None = None
) -> list[tuple[ReviewItem, Message, str | None]]:
    query = (
        select(ReviewItem, Message, Conversation.collection)
        .join(Message, ReviewItem.message_id == Message.id)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(ReviewItem.state == ReviewState.PENDING)
        .order_by(ReviewItem.created_at, ReviewItem.id)
    )
    if flt.collection:
        query = query.where(Conversation.collection == flt.collection)
    if viewer_id is not None:
        query = query.where(Conversation.user_id != viewer_id)
    rows = [(item, message, collection) for item, message, collection in s.execute(query)]
    # Reasons are a JSON list: filtered here, portable across SQLite and PostgreSQL.
    if flt.reason:
        rows = [row for row in rows if flt.reason in [str(r) for r in row[0].reasons]]
    return rows


def pending_items(
    s: Session,
    flt: QueueFilter | None = None,
    limit: int = PAGE_SIZE,
    viewer_id: int | None = None,
    offset: int = 0,
) -> list[PendingItem]:
    """Oldest pending items first, each with the question it answered and every correction.

    ``viewer_id``: items about the viewer's own conversations are left out (nobody reviews
    answers to their own questions).
    """
    items = []
    rows = _pending_rows(s, flt or QueueFilter(), viewer_id)[offset : offset + limit]
    for item, answer, collection in rows:
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
                created_at=item.created_at,
                sources=source_views(s, answer),
                origin=answer.origin,
                corrections=corrections_of(s, answer.id),
                repeats=item.repeats or 0,
            )
        )
    return items


def pending_count(s: Session, flt: QueueFilter | None = None, viewer_id: int | None = None) -> int:
    """How many pending items the filter and the viewer leave (for the queue's pages)."""
    return len(_pending_rows(s, flt or QueueFilter(), viewer_id))


def corrections_of(s: Session, message_id: int) -> list[CorrectionView]:
    """Every thumbs-down on an answer that says something, oldest first."""
    rows = s.scalars(
        select(Feedback)
        .where(Feedback.message_id == message_id, Feedback.rating == -1)
        .order_by(Feedback.id)
    )
    return [
        CorrectionView(f.id, f.correction, f.reason, f.created_at)
        for f in rows
        if f.correction or f.reason
    ]


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


def _acceptable_correction(s: Session, item: ReviewItem, feedback_id: int | None) -> Feedback:
    """The correction a reviewer accepts: a thumbs-down with text on this very answer."""
    if feedback_id is None:
        raise InvalidInput("Accepting a correction needs its 'feedback_id'.")
    feedback = s.get(Feedback, feedback_id)
    if feedback is None or feedback.message_id != item.message_id or not feedback.correction:
        raise InvalidInput(f"Feedback {feedback_id} is not a correction of this answer.")
    return feedback


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
    s: Session,
    item_id: int,
    reviewer_id: int,
    action: str,
    edited_answer: str,
    note: str,
    feedback_id: int | None = None,
) -> Decision:
    """Record a decision on a pending item, with its audit entry; Conflict if already decided.

    ``edited_answer`` and ``note`` must already be scrubbed of personal data. Nobody decides
    on an answer to their own question. ``accept_correction`` takes the text of the user
    correction ``feedback_id`` (made before this decision) as the answer, word for word.
    """
    _check_decision(action, edited_answer, note)
    item = _decidable_item(s, item_id, reviewer_id)
    accepted = None
    if action == "accept_correction":
        accepted = _acceptable_correction(s, item, feedback_id)
        edited_answer = accepted.correction or ""
    # Conditional update: of two reviewers deciding at once, exactly one wins.
    result = s.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item_id, ReviewItem.state == ReviewState.PENDING)
        .values(
            state=ACTIONS[action],
            reviewer_id=reviewer_id,
            decided_at=utcnow(),
            edited_answer=edited_answer.strip() if ACTIONS[action] is ReviewState.EDITED else None,
            accepted_feedback_id=accepted.id if accepted is not None else None,
            note=note.strip() or None,
        )
    )
    decided = s.get(ReviewItem, item_id, populate_existing=True)
    assert decided is not None
    # execute() is typed Result; an UPDATE returns a CursorResult
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(f"Review item {item_id} was already decided ({decided.state.value}).")
    _audit_decision(s, decided, reviewer_id, action)
    logger.info("review item %d: %s by user %d", item_id, decided.state.value, reviewer_id)
    return Decision(
        decided.id, decided.message_id, decided.state.value, decided.reviewer_id, decided.decided_at
    )


def _check_decision(action: str, edited_answer: str, note: str) -> None:
    if action not in ACTIONS:
        raise InvalidInput("'action' must be approve, edit, accept_correction or reject.")
    if action == "edit" and not edited_answer.strip():
        raise InvalidInput("An edit needs the edited answer.")
    if len(edited_answer) > MAX_EDIT_CHARS or len(note) > MAX_NOTE_CHARS:
        raise InvalidInput(
            f"The edit is limited to {MAX_EDIT_CHARS} characters and the note to {MAX_NOTE_CHARS}."
        )


def _decidable_item(s: Session, item_id: int, reviewer_id: int) -> ReviewItem:
    """The item, when it exists and answers someone else's question."""
    item = s.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"No review item {item_id}.")
    owner = s.scalar(
        select(Conversation.user_id)
        .join(Message, Message.conversation_id == Conversation.id)
        .where(Message.id == item.message_id)
    )
    if owner == reviewer_id:
        raise Forbidden("Answers to your own questions are reviewed by someone else.")
    return item


def _audit_decision(s: Session, item: ReviewItem, reviewer_id: int, action: str) -> None:
    """Ids and states only: the edit and the note are free text and stay out of the log."""
    audit.record(
        s,
        reviewer_id,
        f"review.{action}",
        target=f"review_item:{item.id}",
        details={
            "message_id": item.message_id,
            "state": item.state.value,
            "held": item.held,
            "has_note": item.note is not None,
            "accepted_feedback_id": item.accepted_feedback_id,
        },
    )


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
