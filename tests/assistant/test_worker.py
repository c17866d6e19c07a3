"""A real Celery worker process runs an ingest job: embedded broker, and Redis + PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery import Celery

from assistant.infra import jobs
from assistant.services import Services
from assistant.settings import Settings
from assistant.storage import models
from assistant.worker import celery_config

pytestmark = pytest.mark.slow


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "worker", "--no-beat"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def wait_for_job(services: Services, job_id: int, timeout: float = 240) -> models.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get_job(services.db, job_id)
        if job.state in (models.JobState.SUCCEEDED, models.JobState.FAILED):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def round_trip(tmp_path: Path, extra_env: dict[str, str]) -> None:
    env = dict(
        os.environ,
        ASSISTANT_DATA_DIR=str(tmp_path / "var"),
        ASSISTANT_LOG_LEVEL="INFO",
        **extra_env,
    )
    settings = Settings(_env_file=None, **_settings_from(env))  # type: ignore[call-arg]
    services = Services(settings)
    services.db.upgrade()
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        json.dumps(
            {
                "id": "w:1",
                "title": "Frostbite",
                "text": "Frostbite is an injury caused by freezing of the skin.",
            }
        )
        + "\n"
    )
    job_id = jobs.create_job(
        services.db, "ingest", {"paths": [str(corpus)], "collection": "medical"}, None
    )
    client = Celery("test-client")
    client.config_from_object(celery_config(settings))
    worker = start_worker(env)
    try:
        client.send_task("assistant.ingest", args=[job_id])
        job = wait_for_job(services, job_id)
    finally:
        output = stop(worker)
    assert job.state is models.JobState.SUCCEEDED, (job.message, output[-3000:])
    assert job.progress == 1.0 and job.result["documents_added"] == 1
    assert job.started_at is not None and job.finished_at is not None
    assert {c.doc_id for c in services.index.current().chunks} == {"w:1"}


def _settings_from(env: dict[str, str]) -> dict[str, object]:
    values: dict[str, object] = {"data_dir": env["ASSISTANT_DATA_DIR"]}
    if "ASSISTANT_DATABASE__URL" in env:
        values["database"] = {"url": env["ASSISTANT_DATABASE__URL"]}
    if "ASSISTANT_BROKER__URL" in env:
        values["broker"] = {"url": env["ASSISTANT_BROKER__URL"]}
    return values


def test_worker_round_trip_on_the_embedded_broker(tmp_path: Path) -> None:
    round_trip(tmp_path, {})


def test_worker_round_trip_on_rabbitmq(tmp_path: Path, rabbitmq_url: str) -> None:
    round_trip(tmp_path, {"ASSISTANT_BROKER__URL": rabbitmq_url})


@pytest.mark.postgres
@pytest.mark.redis
def test_worker_round_trip_on_redis_and_postgres(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    round_trip(
        tmp_path, {"ASSISTANT_DATABASE__URL": postgres_url, "ASSISTANT_BROKER__URL": redis_url}
    )


def test_the_pii_filter_goes_on_the_handlers_celery_and_gunicorn_set_up() -> None:
    import logging

    from assistant.infra.logging_setup import PII_FILTER, install_on_logger, install_pii_filter

    celery_logger = logging.getLogger("celery.task.some")
    handler = logging.StreamHandler()
    celery_logger.addHandler(handler)
    gunicorn = logging.getLogger("gunicorn.error")
    own = logging.StreamHandler()
    gunicorn.addHandler(own)
    try:
        install_on_logger(logger=celery_logger)  # what Celery's after_setup_logger sends
        install_pii_filter()  # what gunicorn's worker hooks call
        assert PII_FILTER in handler.filters and PII_FILTER in own.filters
    finally:
        celery_logger.removeHandler(handler)
        gunicorn.removeHandler(own)
