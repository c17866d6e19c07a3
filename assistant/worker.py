"""The Celery app, built from the services: the worker runs it, and the web sends its jobs
through one of its own (``make_celery``). Tasks reach the services as ``self.app.services``.

The broker is a setting: kombu's SQLAlchemy transport on a SQLite file by default (no
server), Redis or RabbitMQ by URL. Tasks travel as JSON and carry ids, never objects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_process_init,
    worker_ready,
)

from assistant.infra import jobs
from assistant.infra.logging_setup import install_on_logger
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.services import Services

logger = logging.getLogger(__name__)


def celery_config(settings: Settings) -> dict[str, Any]:
    broker = settings.broker
    config: dict[str, Any] = {
        "broker_url": broker.url,
        "result_backend": broker.result_backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": broker.worker_concurrency,
        "broker_connection_retry_on_startup": True,
        "result_expires": 7 * 24 * 3600,
        "beat_schedule_filename": str(settings.data_dir / "celerybeat-schedule"),
        "imports": ["assistant.tasks"],
        # The learning schedule is edited at run time (app_settings); beat only runs the
        # check that reads it, so a changed schedule needs no restart.
        "beat_schedule": {
            "learning-check": {
                "task": jobs.Task.LEARNING_CHECK.value,
                "schedule": settings.learning.check_every_s,
            }
        },
    }
    # kombu's SQLAlchemy transport hands every transport option to create_engine, so none
    # are set here; it polls its tables once a second.
    return config


def make_celery(services: Services) -> Celery:
    """A Celery app over ``services``. Building it starts nothing and touches no database;
    the tasks need no web app (they reach the services through their Celery app)."""
    celery_app = Celery("assistant")
    celery_app.config_from_object(celery_config(services.settings))
    # Tasks reach the wired services through their app: no module-level singletons.
    celery_app.services = services
    worker_ready.connect(_recover_on_start, sender=None, weak=False)
    worker_process_init.connect(lambda **_: _follow_artifacts(services), weak=False)
    # Celery replaces the root logger's handlers when a worker starts: the PII filter goes
    # on the handlers it sets up (worker and task loggers), as on every other process's.
    after_setup_logger.connect(install_on_logger, weak=False)
    after_setup_task_logger.connect(install_on_logger, weak=False)
    return celery_app


def _follow_artifacts(services: Services) -> None:
    """Each worker child follows the shared index and model (several machines only)."""
    try:
        services.follow_artifacts()
    except Exception:  # the follower retries; a task reports what it cannot reach
        logger.exception("could not start following the artifact store")


def _recover_on_start(sender: Any = None, **_: Any) -> None:
    """A worker that starts fails the training jobs a dead worker left running."""
    from assistant.learning.runs import recover_stale_jobs

    app = getattr(sender, "app", None)
    services = getattr(app, "services", None)
    if services is not None:
        try:
            recover_stale_jobs(services)
        except Exception:
            logger.exception("could not recover stale training jobs")
