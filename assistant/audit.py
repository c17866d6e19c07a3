"""The audit trail: who did what to which object. Details hold ids and states, never free text."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from assistant.storage.models import AuditEntry


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
