"""A chat turn: the question checked, guarded and stored, then the answer streamed, stored and
flagged for review where the rules say so."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from assistant.asking.answer import GenerationOptions
from assistant.asking.conversation import PastTurn
from assistant.asking.conversation_pii import ConversationScrubber
from assistant.asking.history import own_conversation
from assistant.errors import AssistantError, InvalidInput
from assistant.storage import models
from safety.flags import (
    FlagDecision,
    decide,
    guard_flag,
    is_guard_flag,
    may_hold_after_generation,
)
from safety.guards import GuardVerdict, check_question, normalise_question
from safety.pii import PIISpan

if TYPE_CHECKING:
    from assistant.asking.answer import Answer
    from assistant.asking.pipeline import AnswerPipeline
    from assistant.infra.metrics import ServingMetrics
    from assistant.llm.router import ServingLLM
    from assistant.settings import Settings
    from assistant.storage.db import Database
    from safety.guards import InputGuard

logger = logging.getLogger(__name__)

MAX_HISTORY_TURNS = 6  # earlier turns read to resolve a follow-up
INTERNAL_ERROR = {"error": "internal_error", "message": "The answer failed; please try again."}

EventKind = Literal["sources", "token", "done", "error"]


@dataclass(frozen=True)
class StreamEvent:
    """One server-sent event of an answer.

    - ``sources``: ``{"citations": [citation dict, ...]}`` the numbered passages given to the model
    - ``token``: ``{"text": str}`` a piece of the answer
    - ``done``: ``{"message_id", "conversation_id", "answer", "citations", "flagged", "flags",
      "held", "guard"}``: the stored answer; ``citations`` are the sources the answer cites;
      ``held``: a reviewer must approve it first, and ``answer`` is empty; ``guard``: null, or
      what the input guard did instead of the model (``block``, ``emergency``,
      ``out_of_scope``)
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
    guard: GuardVerdict | None = None  # set when the input guard answers instead of the model
    history: tuple[PastTurn, ...] = ()  # the conversation's earlier questions, oldest first
    options: GenerationOptions = field(default_factory=GenerationOptions)


class ChatService:
    """Stores turns and answers; the web views and the API call only this.

    The heavy parts (the input guard's models, the pipeline with its index and model) are
    given as providers: they load on the first question that needs them, and a question the
    guard answers never loads the model. ``loaded_llm`` gives the model only if it is loaded
    (back-pressure is checked against a model that exists, never by loading one)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        pii: ConversationScrubber,
        guard: Callable[[], InputGuard],
        pipeline: Callable[[], AnswerPipeline],
        loaded_llm: Callable[[], ServingLLM | None],
        metrics: ServingMetrics,
    ) -> None:
        self.settings, self.db, self.pii, self.metrics = settings, db, pii, metrics
        self._guard, self._pipeline, self._loaded_llm = guard, pipeline, loaded_llm

    # ---- asking ----------------------------------------------------------------------------
    def start_turn(
        self,
        user_id: int,
        question: str,
        conversation_id: int | None = None,
        collection: str | None = None,
        history: Sequence[PastTurn] | None = None,
        options: GenerationOptions | None = None,
    ) -> Turn:
        """Validate and store the (scrubbed) question; raises InvalidInput or NotFound.

        Validation happens here, before any streaming starts, so that bad input gets a 4xx.
        A new conversation is created when ``conversation_id`` is None. ``history``: the
        earlier turns as a client sent them (/v1); None reads them from the conversation.
        """
        question, collection = validate_question(self.settings, question, collection)
        guard = self._guard().check(question)
        llm = self._loaded_llm()
        if guard.allowed and llm is not None:
            # Back-pressure before anything is stored or streamed: a 503 with Retry-After.
            llm.check_capacity()
        with self.db.session() as session:
            if conversation_id is None:
                conversation = models.Conversation(
                    user_id=user_id, collection=collection, pii_placeholders={}
                )
                session.add(conversation)
            else:
                conversation = own_conversation(session, user_id, conversation_id)
                conversation.updated_at = models.utcnow()
                if history is None:
                    history = past_turns(conversation.messages)
            stored_question = self.pii.scrub_in(conversation, question)
            if conversation_id is None:
                conversation.title = _title(stored_question)
            session.flush()
            message = models.Message(
                conversation_id=conversation.id, role="user", content=stored_question
            )
            session.add(message)
            session.flush()
            if not guard.allowed:
                logger.info("message %s answered by the input guard: %s", message.id, guard.reason)
            sees = self.settings.safety.model_sees
            if sees == "auto":
                remote = self.settings.llm.backend == "remote"
                sees = "scrubbed" if remote else "original"
            return Turn(
                user_id,
                conversation.id,
                message.id,
                question if sees == "original" else stored_question,
                collection,
                guard if not guard.allowed else None,
                tuple(history or ())[-MAX_HISTORY_TURNS:],
                options or GenerationOptions(),
            )

    def stream_answer(self, turn: Turn) -> Iterator[StreamEvent]:
        """Retrieve, generate and store the answer; yields sources, tokens, then done or error.

        When the input guard answered, its message comes through the same events without the
        model. When a rule could hold the answer, tokens are buffered, not streamed, and the
        answer is sent only if it is not held.
        """
        if turn.guard is not None:
            yield from self._guard_reply(turn, turn.guard)
            return
        buffer = may_hold_after_generation(self.settings.safety.flag_rules.policy)
        try:
            events = self._pipeline().stream(
                turn.question, turn.collection, history=turn.history, options=turn.options
            )
            for event in events:
                if event.kind == "sources":
                    yield StreamEvent("sources", {"citations": [c.to_dict() for c in event.data]})
                elif event.kind == "token":
                    if not buffer:
                        yield StreamEvent("token", {"text": event.data})
                else:
                    done = self._store_answer(turn, event.data)
                    if buffer and not done["held"]:
                        yield StreamEvent("token", {"text": done["answer"]})
                    yield StreamEvent("done", done)
        except AssistantError as exc:
            logger.warning("answer for message %s failed: %s", turn.user_message_id, exc.code)
            yield StreamEvent("error", {"error": exc.code, "message": str(exc)})
        except Exception:
            logger.exception("answer for message %s failed", turn.user_message_id)
            yield StreamEvent("error", dict(INTERNAL_ERROR))

    def _store_answer(self, turn: Turn, answer: Answer) -> dict[str, Any]:
        citations = [c.to_dict() for c in answer.citations]
        decision = decide(answer.flags, self.settings.safety.flag_rules.policy)
        message_id = self._store_reply(
            turn,
            answer.text,
            decision,
            citations=citations,
            sources=[c.to_dict() for c in answer.sources],
            origin=answer.origin,
            timings=answer.timings,
            flags=answer.flags,
            retrieval_score=answer.retrieval_score,
            model_version_id=answer.model_version_id,
            pii_spans=answer.pii_spans if answer.detected_pii else None,
        )
        if decision.held:
            logger.info("answer %s held for review: %s", message_id, ", ".join(decision.reasons))
        return {
            "message_id": message_id,
            "conversation_id": turn.conversation_id,
            "answer": "" if decision.held else answer.text,
            "citations": citations,
            "sources": [c.to_dict() for c in answer.sources],
            "flagged": decision.review,
            "flags": answer.flags,
            "held": decision.held,
            "timings": answer.timings,
            "guard": None,
            "model": answer.model,
            "model_version_id": answer.model_version_id,
            "origin": answer.origin,
            "abstained": answer.abstained,
            "question": answer.question,
            "finish_reason": answer.finish_reason,
            "prompt_tokens": answer.prompt_tokens,
        }

    def _guard_reply(self, turn: Turn, verdict: GuardVerdict) -> Iterator[StreamEvent]:
        """The input guard's message, stored and streamed like an answer; no model call."""
        flags = guard_flags(verdict)
        self.metrics.guard_replies.labels(action=verdict.action).inc()
        if verdict.action == "emergency":  # ids and rule names only: never the user's words
            logger.warning("crisis reply to message %s (%s)", turn.user_message_id, flags)
        decision = decide(flags, self.settings.safety.flag_rules.policy)
        # Nothing generated is shown, so there is nothing to hold back.
        decision = FlagDecision(decision.reasons, held=False)
        yield StreamEvent("sources", {"citations": []})
        yield StreamEvent("token", {"text": verdict.message})
        try:
            message_id = self._store_reply(turn, verdict.message, decision, flags=flags)
        except Exception:
            logger.exception("guard reply for message %s was not stored", turn.user_message_id)
            yield StreamEvent("error", dict(INTERNAL_ERROR))
            return
        yield StreamEvent(
            "done",
            {
                "message_id": message_id,
                "conversation_id": turn.conversation_id,
                "answer": verdict.message,
                "citations": [],
                "sources": [],
                "flagged": decision.review,
                "flags": flags,
                "held": False,
                "timings": {},
                "guard": verdict.action,
                "origin": "none",
                "abstained": False,
                "finish_reason": "stop",
                "prompt_tokens": 0,
            },
        )

    def _store_reply(
        self,
        turn: Turn,
        text: str,
        decision: FlagDecision,
        *,
        flags: list[str],
        citations: list[dict[str, Any]] | None = None,
        sources: list[dict[str, Any]] | None = None,
        origin: str | None = None,
        timings: dict[str, float] | None = None,
        retrieval_score: float | None = None,
        model_version_id: int | None = None,
        pii_spans: list[PIISpan] | None = None,
    ) -> int:
        with self.db.session() as session:
            conversation = session.get(models.Conversation, turn.conversation_id)
            # ``pii_spans``: the output guard's findings in this very text (no second pass).
            content = (
                self.pii.scrub_in(conversation, text, pii_spans)
                if conversation is not None
                else self.pii.scrub(text, pii_spans)
            )
            message = models.Message(
                conversation_id=turn.conversation_id,
                role="assistant",
                content=content,
                citations=citations or [],
                sources=sources or [],
                origin=origin,
                timings=timings or {},
                flags=flags,
                flagged=decision.review,
                retrieval_score=retrieval_score,
                model_version_id=model_version_id,
            )
            session.add(message)
            session.flush()
            if decision.review:
                same = self._pending_guard_item(session, turn.user_id, decision.reasons)
                if same is not None:
                    same.repeats = (same.repeats or 0) + 1
                else:
                    session.add(
                        models.ReviewItem(
                            message_id=message.id, reasons=decision.reasons, held=decision.held
                        )
                    )
            return message.id

    @staticmethod
    def _pending_guard_item(
        session: Any, user_id: int, reasons: list[str]
    ) -> models.ReviewItem | None:
        """The user's pending item for the same input-guard reasons, if any (guard replies
        only: every generated answer is reviewed on its own)."""
        if not reasons or not all(is_guard_flag(r) for r in reasons):
            return None
        candidates = session.scalars(
            select(models.ReviewItem)
            .join(models.Message, models.Message.id == models.ReviewItem.message_id)
            .join(models.Conversation, models.Conversation.id == models.Message.conversation_id)
            .where(
                models.Conversation.user_id == user_id,
                models.ReviewItem.state == models.ReviewState.PENDING,
            )
        )
        return next((c for c in candidates if list(c.reasons) == list(reasons)), None)


def past_turns(messages: Sequence[models.Message]) -> list[PastTurn]:
    """The conversation's user turns, each with the titles its answer cited."""
    turns: list[PastTurn] = []
    for message in messages:
        if message.role == "user":
            turns.append(PastTurn(message.content))
        elif message.role == "assistant" and turns and not turns[-1].cited_titles:
            titles = tuple(
                str(c.get("title", "")) for c in message.citations or [] if c.get("title")
            )
            turns[-1] = PastTurn(turns[-1].question, titles)
    return turns


def validate_question(
    settings: Settings, question: object, collection: str | None
) -> tuple[str, str | None]:
    """The normalised question and collection, or InvalidInput; chat, API and CLI share it."""
    if not isinstance(question, str):
        raise InvalidInput("'question' must be a string")
    question = normalise_question(question)
    verdict = check_question(question, settings.safety.max_question_chars)
    if not verdict.allowed:
        raise InvalidInput(verdict.message)
    collection = collection or None
    if collection is not None and collection not in settings.collections:
        known = ", ".join(settings.collections)
        raise InvalidInput(f"unknown collection {collection!r}; choose one of: {known}")
    return question, collection


def guard_flags(verdict: GuardVerdict) -> list[str]:
    """The flags of a question the input guard answered: its action, then each rule hit."""
    return [guard_flag(verdict.action), *(guard_flag(hit) for hit in verdict.hits)]


def _title(question: str) -> str:
    first_line = question.strip().splitlines()[0] if question.strip() else "New conversation"
    return first_line[:80] + ("…" if len(first_line) > 80 else "")
