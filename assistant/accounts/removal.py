"""Removing an account: the person and everything they wrote go, and nothing answers for them.

One transaction deletes the account's conversations (their questions and answers), the
feedback and review items on them, its API tokens and the account row itself; its sessions
die with the row (a session is looked up by account on every request). Then the answer
cache forgets the answers to its questions. What the account did to other people's data
stays, without the name: review decisions and jobs keep their effect, their actor becomes
unknown (the foreign keys set it to NULL).

Datasets already built keep their examples: those were scrubbed of personal data before they
were written (training/datasets.py), and models trained on them stay reproducible. Later
builds no longer see the account's feedback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, delete, func, select
from sqlalchemy.orm import Session

from assistant.asking.cache import AnswerCache
from assistant.errors import Conflict, NotFound
from assistant.infra import audit
from assistant.storage.db import Database
from assistant.storage.models import (
    ApiToken,
    Conversation,
    Feedback,
    Message,
    ReviewItem,
    Role,
    User,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemovedAccount:
    """What went with the account (counts only: the content itself is gone)."""

    user_id: int
    conversations: int
    messages: int
    feedback: int
    review_items: int
    api_tokens: int
    cached_answers: int


def remove_account(
    db: Database, user_id: int, actor_id: int | None, cache: AnswerCache | None
) -> RemovedAccount:
    """Delete the account ``user_id`` and what it wrote; NotFound, or Conflict for the last
    active admin. ``actor_id`` is who asked (the account itself, or an admin)."""
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise NotFound(f"No account {user_id}.")
        _keep_an_admin(s, user)
        questions = list(
            s.scalars(
                select(Message.content)
                .join(Conversation, Message.conversation_id == Conversation.id)
                .where(Conversation.user_id == user_id, Message.role == "user")
            )
        )
        removed = _delete_rows(s, user_id)
        s.delete(user)
        # The actor is gone too when an account removes itself: the entry keeps only the id.
        audit.record(
            s,
            None if actor_id == user_id else actor_id,
            "user.delete",
            target=f"user:{user_id}",
            details={k: v for k, v in removed.items() if v},
        )
    cached = _forget_answers(cache, questions)
    db.flush_deleted()
    logger.info("account %d removed (%s)", user_id, removed)
    return RemovedAccount(user_id=user_id, cached_answers=cached, **removed)


def _keep_an_admin(s: Session, user: User) -> None:
    if user.role != Role.ADMIN or not user.is_active:
        return
    admins = s.scalar(
        select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.is_active)
    )
    if (admins or 0) <= 1:
        raise Conflict("This is the last active admin: make another admin first.")


def _delete_rows(s: Session, user_id: int) -> dict[str, int]:
    """Delete explicitly, child tables first, rather than trust every database's cascade
    (SQLite enforces foreign keys only with a pragma): the counts are then exact too."""
    conversations = select(Conversation.id).where(Conversation.user_id == user_id)
    messages = select(Message.id).where(Message.conversation_id.in_(conversations))
    counts = {
        "review_items": _delete(s, delete(ReviewItem).where(ReviewItem.message_id.in_(messages))),
        # Their feedback anywhere, and anyone's feedback on their answers.
        "feedback": _delete(
            s,
            delete(Feedback).where(
                (Feedback.user_id == user_id) | Feedback.message_id.in_(messages)
            ),
        ),
    }
    counts["messages"] = _delete(s, delete(Message).where(Message.id.in_(messages)))
    counts["conversations"] = _delete(
        s, delete(Conversation).where(Conversation.user_id == user_id)
    )
    counts["api_tokens"] = _delete(s, delete(ApiToken).where(ApiToken.user_id == user_id))
    return counts


def _delete(s: Session, statement: Delete) -> int:
    result = s.execute(statement.execution_options(synchronize_session=False))
    # A DELETE's result is a CursorResult, which has the row count.
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _forget_answers(cache: AnswerCache | None, questions: list[str]) -> int:
    """Cached answers to the account's questions go too (a cache must not fail the removal:
    its entries expire anyway)."""
    if cache is None or not questions:
        return 0
    try:
        return cache.forget(questions)
    except Exception:
        logger.exception("the answer cache could not forget a removed account's questions")
        return 0
