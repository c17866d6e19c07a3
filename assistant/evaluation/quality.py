"""Quality figures for the control room: feedback per day and thumbs-up rate per model version."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.storage.models import (
    Feedback,
    Message,
    ModelVersion,
    utcnow,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


# ---- feedback and quality ------------------------------------------------------------------
@dataclass(frozen=True)
class DayCounts:
    day: date
    questions: int
    thumbs_up: int
    thumbs_down: int
    flagged: int


@dataclass(frozen=True)
class VersionRate:
    """Thumbs on the answers of one model version (``None``: answers without a version)."""

    version: str
    thumbs_up: int
    thumbs_down: int

    @property
    def rate(self) -> float | None:
        total = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / total if total else None


@dataclass(frozen=True)
class Quality:
    days: list[DayCounts]
    versions: list[VersionRate]
    flag_reasons: dict[str, int]


def _day(value: datetime | date | str | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def quality(s: Session, days: int = 14, today: date | None = None) -> Quality:
    """Counts per day over the last ``days`` days, thumbs-up rate per model version, flags."""
    end = today or utcnow().date()
    start = end - timedelta(days=days - 1)
    since = datetime.combine(start, datetime.min.time())
    per_day: dict[date, dict[str, int]] = {
        start + timedelta(days=i): {"questions": 0, "up": 0, "down": 0, "flagged": 0}
        for i in range(days)
    }

    def add(column: str, created: Any, n: int = 1) -> None:
        d = _day(created)
        if d in per_day:
            per_day[d][column] += n

    for created in s.scalars(
        select(Message.created_at).where(Message.role == "user", Message.created_at >= since)
    ):
        add("questions", created)
    for created in s.scalars(
        select(Message.created_at).where(Message.flagged.is_(True), Message.created_at >= since)
    ):
        add("flagged", created)
    for created, rating in s.execute(
        select(Feedback.created_at, Feedback.rating).where(Feedback.created_at >= since)
    ):
        add("up" if rating > 0 else "down", created)

    by_version: dict[str, list[int]] = {}
    for name, rating, n in s.execute(
        select(ModelVersion.name, Feedback.rating, func.count())
        .select_from(Feedback)
        .join(Message, Message.id == Feedback.message_id)
        .outerjoin(ModelVersion, ModelVersion.id == Message.model_version_id)
        .group_by(ModelVersion.name, Feedback.rating)
    ):
        counts = by_version.setdefault(name or "(no version recorded)", [0, 0])
        counts[0 if rating > 0 else 1] += n

    reasons: dict[str, int] = {}
    for flags in s.scalars(select(Message.flags).where(Message.flagged.is_(True))):
        for flag in set(flags or []):
            reasons[str(flag)] = reasons.get(str(flag), 0) + 1

    return Quality(
        days=[
            DayCounts(d, c["questions"], c["up"], c["down"], c["flagged"])
            for d, c in per_day.items()
        ],
        versions=[VersionRate(v, up, down) for v, (up, down) in sorted(by_version.items())],
        flag_reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
