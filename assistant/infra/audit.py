"""The audit trail: who did what to which object, and the log page that reads it. Details hold
ids and states, never free text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.storage.models import AuditEntry, User

PAGE_SIZE = 50


def record(
    session: Session,
    actor_id: int | None,
    action: str,
    target: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an entry to ``session``; it is written when the caller's transaction commits."""
    entry = AuditEntry(
        actor_id=actor_id, action=action, target=target[:300], details=dict(details or {})
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditRow:
    id: int
    created_at: datetime | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditRow]
    actions: list[str]
    page: int
    pages: int
    total: int


def audit_log(s: Session, action: str | None = None, page: int = 1) -> AuditPage:
    """Newest first; ``action`` filters by an exact action or a prefix ending in a dot."""
    where = []
    if action:
        if action.endswith("."):
            where.append(AuditEntry.action.startswith(action, autoescape=True))
        else:
            where.append(AuditEntry.action == action)
    total = s.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = s.execute(
        select(AuditEntry, User.email)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(*where)
        .order_by(AuditEntry.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    actions = list(s.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
    entries = [
        AuditRow(
            e.id,
            e.created_at,
            email or (f"user {e.actor_id}" if e.actor_id else "system"),
            e.action,
            e.target,
            dict(e.details or {}),
        )
        for e, email in rows
    ]
    return AuditPage(entries, actions, page, pages, total)
