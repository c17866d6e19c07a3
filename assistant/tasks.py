"""Celery tasks: thin wrappers over plain functions; each takes ids and records its job."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import shared_task

from assistant import jobs
from assistant.corpus import ingest_paths

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, name="assistant.ingest")
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
            [Path(p) for p in job.params.get("paths", [])],
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
