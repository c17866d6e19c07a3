"""Job rows: long work done by workers, with state and progress the admin pages show."""

from __future__ import annotations

from typing import Any

from assistant.errors import NotFound
from assistant.storage import models
from assistant.storage.db import Database


def create_job(db: Database, kind: str, params: dict[str, Any], created_by: int | None) -> int:
    with db.session() as session:
        job = models.Job(kind=kind, params=params, created_by=created_by)
        session.add(job)
        session.flush()
        return job.id


def get_job(db: Database, job_id: int) -> models.Job:
    with db.session() as session:
        job = session.get(models.Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job


def start_job(db: Database, job_id: int) -> bool:
    """Mark the job running; False when it already finished (a redelivered task)."""
    with db.session() as session:
        job = session.get(models.Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        if job.state in (models.JobState.SUCCEEDED, models.JobState.CANCELLED):
            return False
        job.state = models.JobState.RUNNING
        job.started_at = models.utcnow()
        job.progress = 0.0
        return True


def report_progress(db: Database, job_id: int, progress: float, message: str) -> None:
    with db.session() as session:
        job = session.get(models.Job, job_id)
        if job is not None:
            job.progress = max(0.0, min(1.0, progress))
            job.message = message[:2000]


def finish_job(db: Database, job_id: int, result: dict[str, Any], error: str | None = None) -> None:
    with db.session() as session:
        job = session.get(models.Job, job_id)
        if job is None:
            return
        job.state = models.JobState.FAILED if error else models.JobState.SUCCEEDED
        job.result = result
        job.message = (error or "done")[:2000]
        job.progress = job.progress if error else 1.0
        job.finished_at = models.utcnow()
