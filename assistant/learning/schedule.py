"""The learning schedule set at run time: beat's periodic check queues a dataset job (which
goes on to training) when enough new reviewed answers exist.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from assistant.errors import InvalidInput
from assistant.infra import jobs
from assistant.learning.datasets import new_examples_count
from assistant.learning.runs import recover_stale_jobs
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import JobKind, JobState

if TYPE_CHECKING:
    from assistant.services import Services

logger = logging.getLogger(__name__)


SCHEDULE_KEY = "learning.schedule"


LAST_CHECK_KEY = "learning.last_check"


# Inclusive bounds of the schedule's numbers (the schedule API's schema declares them from here).
SCHEDULE_BOUNDS: dict[str, tuple[int, int]] = {
    "interval_minutes": (1, 7 * 24 * 60),
    "min_new_examples": (1, 1_000_000),
}
DEFAULT_SCHEDULE: dict[str, Any] = {
    "enabled": False,
    "interval_minutes": 60,
    "min_new_examples": 50,
}


def get_schedule(db: Database) -> dict[str, Any]:
    with db.session() as session:
        row = session.get(models.AppSetting, SCHEDULE_KEY)
        return {**DEFAULT_SCHEDULE, **(row.value if row is not None else {})}


def set_schedule(db: Database, values: dict[str, Any], actor_id: int | None) -> dict[str, Any]:
    """Validate and store the schedule; beat's next check follows it (no restart)."""
    schedule = get_schedule(db)
    unknown = set(values) - set(DEFAULT_SCHEDULE)
    if unknown:
        raise InvalidInput(f"unknown schedule fields: {', '.join(sorted(unknown))}")
    if "enabled" in values:
        if not isinstance(values["enabled"], bool):
            raise InvalidInput("'enabled' must be true or false")
        schedule["enabled"] = values["enabled"]
    for key, (low, high) in SCHEDULE_BOUNDS.items():
        if key in values:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"'{key}' must be an integer in [{low}, {high}]")
            schedule[key] = value
    with db.session() as session:
        row = session.get(models.AppSetting, SCHEDULE_KEY)
        if row is None:
            session.add(models.AppSetting(key=SCHEDULE_KEY, value=schedule, updated_by=actor_id))
        else:
            row.value, row.updated_by = schedule, actor_id
    return schedule


def check_schedule(services: Services, now: datetime | None = None) -> int | None:
    """Beat's periodic check: when due and enough new reviewed answers exist, queue a
    dataset job that goes on to training. Returns that job's id, or None."""
    db = services.db
    recover_stale_jobs(services)
    schedule = get_schedule(db)
    now = now or models.utcnow()
    if not schedule["enabled"]:
        return None
    with db.session() as session:
        row = session.get(models.AppSetting, LAST_CHECK_KEY)
        last = datetime.fromisoformat(row.value) if row is not None else None
        if last is not None and now - last < timedelta(minutes=schedule["interval_minutes"]):
            return None
        if row is None:
            session.add(models.AppSetting(key=LAST_CHECK_KEY, value=now.isoformat()))
        else:
            row.value = now.isoformat()
    if new_examples_count(db) < schedule["min_new_examples"]:
        return None
    busy = db_has_open_jobs(db)
    if busy:
        return None
    return jobs.create_job(db, JobKind.DATASET, {"then_train": True}, None)


def db_has_open_jobs(db: Database) -> bool:
    with db.session() as session:
        return bool(
            session.scalar(
                select(func.count()).where(
                    models.Job.kind.in_((JobKind.DATASET, JobKind.TRAINING)),
                    models.Job.state.in_((JobState.QUEUED, JobState.RUNNING)),
                )
            )
        )
