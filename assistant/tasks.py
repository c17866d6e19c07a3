"""Celery tasks: thin wrappers over plain functions; each takes ids and records its job."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import shared_task
from sqlalchemy.exc import OperationalError

from assistant.corpus.ingest import ingest_paths
from assistant.errors import ServiceUnavailable
from assistant.infra import jobs
from assistant.storage.models import JobKind

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name=jobs.Task.INGEST.value)
def ingest_task(self: Any, job_id: int) -> dict[str, Any]:
    """Ingest the paths in the job's params; re-running skips unchanged files."""
    services = self.app.services
    return run_ingest_job(services, job_id)


def run_ingest_job(services: Any, job_id: int) -> dict[str, Any]:
    db = services.db
    job = jobs.get_job(db, job_id)
    if not jobs.start_job(db, job_id):
        return dict(job.result)
    try:
        report = ingest_paths(
            services,
            _job_files(services, job.params),
            job.params.get("collection"),
            progress=lambda fraction, message: jobs.report_progress(db, job_id, fraction, message),
        )
    except Exception as exc:
        logger.exception("ingest job %s failed", job_id)
        jobs.finish_job(db, job_id, {}, error=f"{type(exc).__name__}: {exc}")
        raise
    result = {
        "documents_added": report.documents_added,
        "documents_replaced": report.documents_replaced,
        "documents_unchanged": report.documents_unchanged,
        "chunks_added": report.chunks_added,
        "errors": list(report.errors)[:100],
    }
    jobs.finish_job(db, job_id, result)
    return result


def _job_files(services: Any, params: dict[str, Any]) -> list[Path]:
    """The files to ingest on this host: fetched from the artifact store when the job was
    queued on another machine, else the paths as given."""
    if params.get("artifacts"):
        return [services.artifacts.fetch_upload(key) for key in params["artifacts"]]
    return [Path(p) for p in params.get("paths", [])]


# ---- the learning loop -----------------------------------------------------------------------
# Transient: the database or broker briefly unreachable. Anything else fails the job for good.
TRANSIENT = (OperationalError, ConnectionError, TimeoutError)


@shared_task(
    bind=True,
    acks_late=True,
    name=jobs.Task.BUILD_DATASET.value,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    max_retries=3,
)
def build_dataset_task(self: Any, job_id: int) -> dict[str, Any]:
    """Turn reviewed feedback into the next dataset version; may queue a training job."""
    return run_dataset_job(self.app.services, job_id, send=self.app.send_task)


def run_dataset_job(services: Any, job_id: int, send: Any = None) -> dict[str, Any]:
    from assistant.learning import datasets

    db = services.db
    job = jobs.get_job(db, job_id)
    if not jobs.start_job(db, job_id):
        return dict(job.result)
    try:
        dataset = datasets.build_dataset(services)
    except Exception as exc:
        logger.exception("dataset job %s failed", job_id)
        jobs.finish_job(db, job_id, {}, error=f"{type(exc).__name__}: {exc}")
        raise
    result: dict[str, Any] = {"dataset_id": None}
    if dataset is not None:
        result = {
            "dataset_id": dataset.id,
            "version": dataset.version,
            "n_train": dataset.n_train,
            "n_validation": dataset.n_validation,
            "n_pairs": dataset.n_pairs,
            "content_hash": dataset.content_hash,
        }
        if job.params.get("then_train") and send is not None:
            params = {"dataset_id": dataset.id}
            try:
                result["training_job_id"] = jobs.enqueue(
                    db, send, JobKind.TRAINING, params, job.created_by
                )
            except ServiceUnavailable as exc:  # the dataset is built: that job succeeded
                result["training_error"] = str(exc)
    jobs.finish_job(db, job_id, result)
    return result


@shared_task(
    bind=True,
    # Not acks_late: a redelivered training after a lost worker would start a second long
    # run behind the user's back; a lost run fails instead (recover_stale_jobs) and an admin
    # or the schedule starts the next one.
    acks_late=False,
    name=jobs.Task.TRAIN.value,
    max_retries=30,
)
def train_task(self: Any, job_id: int) -> dict[str, Any]:
    """Train, export, gate and roll out one candidate; waits its turn for the lease."""
    from assistant.infra.locks import LockBusy

    db = self.app.services.db
    try:
        return run_training_job(self.app.services, job_id)
    except LockBusy as exc:
        if self.request.retries >= self.max_retries:
            # Never left queued for ever: a job that stops waiting says so.
            jobs.finish_job(db, job_id, {}, error=f"gave up waiting for the training lease: {exc}")
            raise
        jobs.report_progress(db, job_id, 0.0, f"waiting: {exc}")
        raise self.retry(exc=exc, countdown=30) from exc
    except TRANSIENT as exc:
        if self.request.retries >= 3:
            jobs.finish_job(db, job_id, {}, error=f"{type(exc).__name__}: {exc}")
            raise
        raise self.retry(exc=exc, countdown=10, max_retries=3) from exc


def run_training_job(services: Any, job_id: int) -> dict[str, Any]:
    from assistant.infra.locks import LeaseLost, LockBusy, holder
    from assistant.learning import runs

    try:
        return runs.train_and_evaluate(services, job_id)
    except (LockBusy, *TRANSIENT):
        raise
    except LeaseLost:
        # Another worker holds the lease now; if it runs this very job, the job is its own.
        live = holder(services.db, runs.TRAINING_LOCK)
        if live is None or live.job_id != job_id:
            lost = "stopped: the training lease was lost to another worker"
            jobs.finish_job(services.db, job_id, {}, error=lost)
        raise
    except Exception as exc:
        logger.exception("training job %s failed", job_id)
        jobs.finish_job(services.db, job_id, {}, error=f"{type(exc).__name__}: {exc}")
        raise


@shared_task(bind=True, name=jobs.Task.LEARNING_CHECK.value, ignore_result=True)
def learning_check_task(self: Any) -> int | None:
    """Beat's periodic check of the run-time schedule (see schedule.check_schedule)."""
    from assistant.learning import schedule

    services = self.app.services
    job_id = schedule.check_schedule(services)
    if job_id is not None:
        jobs.dispatch(services.db, self.app.send_task, JobKind.DATASET, job_id)
    return job_id
