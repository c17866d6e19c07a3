"""Feedback on answers: thumbs and written corrections, scrubbed and stored before they are
acknowledged; a thumbs-down opens (or joins) a review item."""

from __future__ import annotations

from sqlalchemy import select

from assistant.asking.conversation_pii import ConversationScrubber
from assistant.asking.history import own_conversation
from assistant.errors import InvalidInput, NotFound
from assistant.storage import models
from assistant.storage.db import Database
from safety.flags import Flag
from safety.guards import normalise_question

MAX_CORRECTION_CHARS = 8000
MAX_REASON_CHARS = 500


class FeedbackService:
    def __init__(self, db: Database, pii: ConversationScrubber, thumbs_down: str) -> None:
        self.db = db
        self.pii = pii
        self.thumbs_down = thumbs_down  # the flag rule: off, warn or hold

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
        thumbs_down = self.thumbs_down
        with self.db.session() as session:
            message = session.get(models.Message, message_id)
            if message is None or message.role != "assistant":
                raise NotFound(f"no answer {message_id}")
            conversation = own_conversation(session, user_id, message.conversation_id)
            # Scrubbed with the conversation's numbering; a bare thumbs needs no PII engine.
            correction = self.pii.scrub_in(conversation, correction) if correction else None
            reason = self.pii.scrub_in(conversation, reason) if reason else None
            feedback = models.Feedback(
                message_id=message_id,
                user_id=user_id,
                rating=rating,
                correction=correction,
                reason=reason,
            )
            session.add(feedback)
            if rating < 0 and thumbs_down != "off":
                pending = session.scalars(
                    select(models.ReviewItem).where(
                        models.ReviewItem.message_id == message_id,
                        models.ReviewItem.state == models.ReviewState.PENDING,
                    )
                ).first()
                if pending is None:
                    session.add(
                        models.ReviewItem(
                            message_id=message_id,
                            reasons=[Flag.THUMBS_DOWN],
                            held=thumbs_down == "hold",
                        )
                    )
                else:
                    if Flag.THUMBS_DOWN not in pending.reasons:
                        pending.reasons = [*pending.reasons, Flag.THUMBS_DOWN]
                    pending.held = pending.held or thumbs_down == "hold"
            session.flush()
            return feedback.id


def _optional_text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{name}' must be a string")
    value = normalise_question(value)
    if len(value) > limit:
        raise InvalidInput(f"'{name}' is longer than {limit} characters")
    return value or None
