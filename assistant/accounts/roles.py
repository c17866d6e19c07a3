"""Users & roles: listing accounts and changing a role or the active flag (audited)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.errors import Conflict, InvalidInput, NotFound
from assistant.infra import audit
from assistant.storage.models import (
    Conversation,
    Role,
    User,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


# ---- accounts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    is_active: bool
    created_at: datetime | None
    conversations: int


def list_accounts(s: Session) -> list[Account]:
    counts = dict(
        s.execute(select(Conversation.user_id, func.count()).group_by(Conversation.user_id)).all()
    )
    return [
        Account(u.id, u.email, u.role.value, u.is_active, u.created_at, counts.get(u.id, 0))
        for u in s.scalars(select(User).order_by(User.email))
    ]


def update_account(
    s: Session, actor_id: int, user_id: int, role: str | None, active: bool | None
) -> Account:
    """Change an account's role and/or whether it may sign in; the last active admin stays."""
    user = s.get(User, user_id)
    if user is None:
        raise NotFound(f"No account {user_id}.")
    new_role = user.role
    if role is not None:
        try:
            new_role = Role(role)
        except ValueError:
            raise InvalidInput(f"Unknown role {role!r}.") from None
    new_active = user.is_active if active is None else active
    if user.role == Role.ADMIN and user.is_active and (new_role != Role.ADMIN or not new_active):
        admins = s.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
        if (admins or 0) <= 1:
            raise Conflict("This is the last active admin: make another admin first.")
    changes: dict[str, Any] = {}
    if new_role != user.role:
        changes["role"] = [user.role.value, new_role.value]
        user.role = new_role
    if new_active != user.is_active:
        changes["active"] = [user.is_active, new_active]
        user.is_active = new_active
    if changes:
        # A new role or a disabled account: the sessions signed in under the old one end.
        user.session_version = (user.session_version or 0) + 1
        audit.record(s, actor_id, "user.update", target=f"user:{user.id}", details=changes)
    return Account(user.id, user.email, user.role.value, user.is_active, user.created_at, 0)
