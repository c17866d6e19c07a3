"""Conversations: one user turn in, a streamed, cited, stored answer out; feedback on answers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select

from assistant.errors import AssistantError, InvalidInput, NotFound
from assistant.storage import models
from safety.guards import check_question, normalise_question

if TYPE_CHECKING:
    from assistant.pipeline import Answer
    from assistant.services import Services

logger = logging.getLogger(__name__)

MAX_CORRECTION_CHARS = 8000
MAX_REASON_CHARS = 500

EventKind = Literal["sources", "token", "done", "error"]


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event of an answer.

    - ``sources``: ``{"citations": [citation dict, ...]}`` the numbered passages given to the model
    - ``token``: ``{"text": str}`` a piece of the answer
    - ``done``: ``{"message_id", "conversation_id", "answer", "citations", "flagged", "flags",
      "held"}``: the stored answer; ``citations`` are the sources the answer cites
    - ``error``: ``{"error": code, "message": text}``; the stream ends after it
    """

    kind: EventKind
    data: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """A validated question, stored, ready to be answered."""

    user_id: int
    conversation_id: int
    user_message_id: int
    question: str  # what the model sees (the original, by default)
    collection: str | None


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


class ChatService:
    """Stores turns and answers; the web views and the API call only this."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # ---- asking ----------------------------------------------------------------------------
    def start_turn(
        self,
        user_id: int,
        question: str,
        conversation_id: int | None = None,
        collection: str | None = None,
    ) -> Turn:
        """Validate and store the (scrubbed) question; raises InvalidInput or NotFound.

        Validation happens here, before any streaming starts, so that bad input gets a 4xx.
        A new conversation is created when ``conversation_id`` is None.
        """
        if not isinstance(question, str):
            raise InvalidInput("'question' must be a string")
        question = normalise_question(question)
        verdict = check_question(question, self.services.settings.safety.max_question_chars)
        if not verdict.allowed:
            raise InvalidInput(verdict.message)
        collection = collection or None
        if collection is not None and collection not in self.services.settings.collections:
            known = ", ".join(self.services.settings.collections)
            raise InvalidInput(f"unknown collection {collection!r}; choose one of: {known}")
        stored_question = self.services.scrubber.scrub(question)
        with self.services.db.session() as session:
            if conversation_id is None:
                conversation = models.Conversation(
                    user_id=user_id, title=_title(stored_question), collection=collection
                )
                session.add(conversation)
            else:
                conversation = self._own_conversation(session, user_id, conversation_id)
                conversation.updated_at = models.utcnow()
            session.flush()
            message = models.Message(
                conversation_id=conversation.id, role="user", content=stored_question
            )
            session.add(message)
            session.flush()
            return Turn(user_id, conversation.id, message.id, question, collection)

    def stream_answer(self, turn: Turn) -> Iterator[StreamEvent]:
        """Retrieve, generate and store the answer; yields sources, tokens, then done or error."""
        try:
            for event in self.services.pipeline.stream(turn.question, turn.collection):
                if event.kind == "sources":
                    yield StreamEvent("sources", {"citations": [c.to_dict() for c in event.data]})
                elif event.kind == "token":
                    yield StreamEvent("token", {"text": event.data})
                else:
                    yield StreamEvent("done", self._store_answer(turn, event.data))
        except AssistantError as exc:
            logger.warning("answer for message %s failed: %s", turn.user_message_id, exc.code)
            yield StreamEvent("error", {"error": exc.code, "message": str(exc)})
        except Exception:
            logger.exception("answer for message %s failed", turn.user_message_id)
            yield StreamEvent(
                "error",
                {"error": "internal_error", "message": "The answer failed; please try again."},
            )

    def _store_answer(self, turn: Turn, answer: Answer) -> dict[str, Any]:
        citations = [c.to_dict() for c in answer.citations]
        with self.services.db.session() as session:
            message = models.Message(
                conversation_id=turn.conversation_id,
                role="assistant",
                content=self.services.scrubber.scrub(answer.text),
                citations=citations,
                timings=answer.timings,
                flags=answer.flags,
                flagged=answer.flagged,
                retrieval_score=answer.retrieval_score,
            )
            session.add(message)
            session.flush()
            if answer.flagged:
                session.add(models.ReviewItem(message_id=message.id, reasons=answer.flags))
            message_id = message.id
        return {
            "message_id": message_id,
            "conversation_id": turn.conversation_id,
            "answer": answer.text,
            "citations": citations,
            "sources": [c.to_dict() for c in answer.sources],
            "flagged": answer.flagged,
            "flags": answer.flags,
            "held": False,
            "timings": answer.timings,
        }

    # ---- reading ---------------------------------------------------------------------------
    def list_conversations(self, user_id: int) -> list[ConversationView]:
        """The user's conversations, newest first, without messages."""
        with self.services.db.session() as session:
            rows = session.scalars(
                select(models.Conversation)
                .where(models.Conversation.user_id == user_id)
                .order_by(models.Conversation.updated_at.desc(), models.Conversation.id.desc())
            ).all()
            return [ConversationView(c.id, c.title, c.collection, c.updated_at) for c in rows]

    def get_conversation(self, user_id: int, conversation_id: int) -> ConversationView:
        """One conversation of this user with its messages; NotFound for anyone else's."""
        with self.services.db.session() as session:
            conversation = self._own_conversation(session, user_id, conversation_id)
            ratings = dict(
                session.execute(
                    select(models.Feedback.message_id, func.max(models.Feedback.rating))
                    .join(models.Message, models.Message.id == models.Feedback.message_id)
                    .where(models.Message.conversation_id == conversation_id)
                    .group_by(models.Feedback.message_id)
                ).all()
            )
            held = set(
                session.scalars(
                    select(models.ReviewItem.message_id)
                    .join(models.Message, models.Message.id == models.ReviewItem.message_id)
                    .where(
                        models.Message.conversation_id == conversation_id,
                        models.ReviewItem.held.is_(True),
                        models.ReviewItem.state == models.ReviewState.PENDING,
                    )
                )
            )
            messages = [
                MessageView(
                    id=m.id,
                    role=m.role,
                    content=m.content,
                    citations=list(m.citations or []),
                    flagged=m.flagged,
                    flags=list(m.flags or []),
                    held=m.id in held,
                    created_at=m.created_at,
                    rating=ratings.get(m.id),
                )
                for m in conversation.messages
            ]
            return ConversationView(
                conversation.id,
                conversation.title,
                conversation.collection,
                conversation.updated_at,
                messages,
            )

    @staticmethod
    def _own_conversation(session: Any, user_id: int, conversation_id: int) -> models.Conversation:
        conversation = session.get(models.Conversation, conversation_id)
        # Someone else's conversation is reported exactly like a missing one.
        if conversation is None or conversation.user_id != user_id:
            raise NotFound(f"no conversation {conversation_id}")
        return conversation  # type: ignore[no-any-return]

    # ---- feedback --------------------------------------------------------------------------
    def add_feedback(
        self,
        user_id: int,
        message_id: int,
        rating: int,
        correction: str | None = None,
        reason: str | None = None,
    ) -> int:
        """Store thumbs (+1/-1) and an optional correction (scrubbed); returns the feedback id.

        A thumbs-down opens a review item (or adds its reason to the pending one).
        The row is committed before this returns: acknowledged feedback is never lost.
        """
        if rating not in (1, -1) or isinstance(rating, bool):
            raise InvalidInput("'rating' must be 1 (thumbs up) or -1 (thumbs down)")
        correction = _optional_text(correction, "correction", MAX_CORRECTION_CHARS)
        reason = _optional_text(reason, "reason", MAX_REASON_CHARS)
        # Scrub before opening the transaction; a bare thumbs needs no PII engine at all.
        correction = self.services.scrubber.scrub(correction) if correction else None
        reason = self.services.scrubber.scrub(reason) if reason else None
        with self.services.db.session() as session:
            message = session.get(models.Message, message_id)
            if message is None or message.role != "assistant":
                raise NotFound(f"no answer {message_id}")
            self._own_conversation(session, user_id, message.conversation_id)
            feedback = models.Feedback(
                message_id=message_id,
                user_id=user_id,
                rating=rating,
                correction=correction,
                reason=reason,
            )
            session.add(feedback)
            if rating < 0:
                pending = session.scalars(
                    select(models.ReviewItem).where(
                        models.ReviewItem.message_id == message_id,
                        models.ReviewItem.state == models.ReviewState.PENDING,
                    )
                ).first()
                if pending is None:
                    session.add(models.ReviewItem(message_id=message_id, reasons=["thumbs_down"]))
                elif "thumbs_down" not in pending.reasons:
                    pending.reasons = [*pending.reasons, "thumbs_down"]
            session.flush()
            return feedback.id

    # ---- sources ---------------------------------------------------------------------------
    def passage(self, doc_id: str, start: int, end: int, context_chars: int = 600) -> PassageView:
        """The cited span of a document with some text around it; NotFound if unknown."""
        with self.services.db.session() as session:
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


def _title(question: str) -> str:
    first_line = question.strip().splitlines()[0] if question.strip() else "New conversation"
    return first_line[:80] + ("…" if len(first_line) > 80 else "")


def _optional_text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be a string")
    value = normalise_question(value)
    if len(value) > limit:
        raise InvalidInput(f"'{name}' is longer than {limit} characters")
    return value or None
