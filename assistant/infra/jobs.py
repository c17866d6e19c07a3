"""Job rows: long work done by workers, with state and progress the admin pages show; and
the one way work reaches a worker (``enqueue``), by the task names declared here.

Every job row is created before its message is sent, so a worker always finds its job; a
message that cannot be sent fails its job at once, so no job waits for ever in ``queued``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from assistant.errors import NotFound, ServiceUnavailable
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import JobKind

logger = logging.getLogger(__name__)


class Task(enum.StrEnum):
    """The Celery task names (assistant/tasks.py registers them under these)."""

    INGEST = "assistant.ingest"
    BUILD_DATASET = "assistant.build_dataset"
    TRAIN = "assistant.train"
    LEARNING_CHECK = "assistant.learning_check"


TASK_OF: dict[JobKind, Task] = {
    JobKind.INGEST: Task.INGEST,
    JobKind.DATASET: Task.BUILD_DATASET,
    JobKind.TRAINING: Task.TRAIN,
}

# Celery's ``send_task(name, args=[...])``: the web app's and the worker's Celery app both have it.
SendTask = Callable[..., Any]


def enqueue(
    db: Database, send: SendTask, kind: JobKind, params: dict[str, Any], created_by: int | None
) -> int:
    """Create a job of ``kind`` and hand it to a worker; its id. ServiceUnavailable (and the
    job failed) when the broker cannot be reached."""
    job_id = create_job(db, kind, params, created_by)
    dispatch(db, send, kind, job_id)
    return job_id


def dispatch(db: Database, send: SendTask, kind: JobKind, job_id: int) -> None:
    """Send an existing job's task to the workers."""
    try:
        send(TASK_OF[kind].value, args=[job_id])
    except Exception as exc:
        logger.exception("could not queue job %s", job_id)
        finish_job(db, job_id, {}, error="the task queue could not be reached")
        raise ServiceUnavailable("The task queue could not be reached; try again.") from exc


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
