"""Reading conversations back: a user's list, one conversation with its messages as the
reader sees them (held answers as their review decided), and a cited passage in context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from assistant.errors import InvalidInput, NotFound
from assistant.review.queue import outcomes as review_outcomes
from assistant.storage import models
from assistant.storage.db import Database


@dataclass(frozen=True)
class MessageView:
    id: int
    role: str
    content: str
    citations: list[dict[str, Any]]
    flagged: bool
    flags: list[str]
    held: bool
    created_at: datetime
    rating: int | None = None
    review: str | None = None  # the review state of a held answer (pending, approved, ...)
    sources: list[dict[str, Any]] = field(default_factory=list)  # every source given
    origin: str | None = None  # model, evidence or none (abstained)


@dataclass(frozen=True)
class ConversationView:
    id: int
    title: str
    collection: str | None
    updated_at: datetime
    messages: list[MessageView] = field(default_factory=list)


@dataclass(frozen=True)
class PassageView:
    """A cited passage in its context, for the citation panel."""

    doc_id: str
    title: str
    source_url: str
    collection: str
    before: str
    passage: str
    after: str
    start: int
    end: int


class ConversationHistory:
    def __init__(self, db: Database) -> None:
        self.db = db

    def list_conversations(self, user_id: int) -> list[ConversationView]:
        """The user's conversations, newest first, without messages."""
        with self.db.session() as session:
            rows = session.scalars(
                select(models.Conversation)
                .where(models.Conversation.user_id == user_id)
                .order_by(models.Conversation.updated_at.desc(), models.Conversation.id.desc())
            ).all()
            return [ConversationView(c.id, c.title, c.collection, c.updated_at) for c in rows]

    def get_conversation(self, user_id: int, conversation_id: int) -> ConversationView:
        """One conversation of this user with its messages; NotFound for anyone else's."""
        with self.db.session() as session:
            conversation = own_conversation(session, user_id, conversation_id)
            ratings = dict(
                session.execute(
                    select(models.Feedback.message_id, func.max(models.Feedback.rating))
                    .join(models.Message, models.Message.id == models.Feedback.message_id)
                    .where(models.Message.conversation_id == conversation_id)
                    .group_by(models.Feedback.message_id)
                ).all()
            )
            # Held answers: hidden while pending or after a rejection, the reviewer's text
            # after an edit (assistant/review/queue.py decides).
            reviewed = review_outcomes(session, [m.id for m in conversation.messages])
            messages = []
            for m in conversation.messages:
                outcome = reviewed.get(m.id)
                shown = outcome.shown_answer if outcome is not None else None
                messages.append(
                    MessageView(
                        id=m.id,
                        role=m.role,
                        content=m.content if shown is None else shown,
                        citations=list(m.citations or []),
                        flagged=m.flagged,
                        flags=list(m.flags or []),
                        held=outcome is not None and outcome.held,
                        created_at=m.created_at,
                        rating=ratings.get(m.id),
                        review=outcome.state if outcome is not None else None,
                        sources=list(m.sources or []),
                        origin=m.origin,
                    )
                )
            return ConversationView(
                conversation.id,
                conversation.title,
                conversation.collection,
                conversation.updated_at,
                messages,
            )

    def passage(self, doc_id: str, start: int, end: int, context_chars: int = 600) -> PassageView:
        """The cited span of a document with some text around it; NotFound if unknown."""
        with self.db.session() as session:
            document = session.scalars(
                select(models.Document).where(models.Document.doc_id == doc_id)
            ).first()
            if document is None:
                raise NotFound(f"no document {doc_id!r}")
            text = document.text
            if not (0 <= start < end <= len(text)):
                raise InvalidInput(f"the span {start}-{end} is outside the document")
            before_start = max(0, start - context_chars)
            after_end = min(len(text), end + context_chars)
            return PassageView(
                doc_id=document.doc_id,
                title=document.title,
                source_url=document.source_url,
                collection=document.collection,
                before=text[before_start:start],
                passage=text[start:end],
                after=text[end:after_end],
                start=start,
                end=end,
            )


def own_conversation(session: Any, user_id: int, conversation_id: int) -> models.Conversation:
    conversation = session.get(models.Conversation, conversation_id)
    # Someone else's conversation is reported exactly like a missing one.
    if conversation is None or conversation.user_id != user_id:
        raise NotFound(f"no conversation {conversation_id}")
    return conversation
