"""Handing work to the workers: one enqueue, task names declared once, no job left queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.errors import ServiceUnavailable
from assistant.infra import jobs
from assistant.storage.db import Database
from assistant.storage.models import JobKind, JobState


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'jobs.db'}")
    database.upgrade()
    yield database  # type: ignore[misc]
    database.dispose()


def test_enqueue_writes_the_job_before_it_sends_its_task(db: Database) -> None:
    sent: list[tuple[str, list[Any], JobState]] = []

    def send(name: str, args: list[Any]) -> None:
        sent.append((name, args, jobs.get_job(db, args[0]).state))  # the row exists already

    job_id = jobs.enqueue(db, send, JobKind.TRAINING, {"dataset_id": 3}, None)
    assert sent == [("assistant.train", [job_id], JobState.QUEUED)]
    job = jobs.get_job(db, job_id)
    assert job.kind == "training" and job.params == {"dataset_id": 3}


def test_a_task_that_cannot_be_sent_fails_its_job_at_once(db: Database) -> None:
    def broken(name: str, args: list[Any]) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ServiceUnavailable):
        jobs.enqueue(db, broken, JobKind.INGEST, {"paths": []}, None)
    (job,) = [jobs.get_job(db, 1)]
    assert job.state is JobState.FAILED and "could not be reached" in job.message


def test_every_kind_has_a_task_that_the_worker_registers() -> None:
    from celery import current_app

    import assistant.tasks  # noqa: F401  (registers the tasks)

    assert set(jobs.TASK_OF) == set(JobKind)
    registered = set(current_app.tasks)
    assert {task.value for task in jobs.Task} <= registered
