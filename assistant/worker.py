"""The Celery app, wired the way Flask documents it (``celery_init_app``).

The broker is a setting: kombu's SQLAlchemy transport on a SQLite file by default (no
server), Redis or RabbitMQ by URL. Tasks travel as JSON and carry ids, never objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Celery, Task

from assistant.settings import Settings

if TYPE_CHECKING:
    from flask import Flask


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
    }
    # kombu's SQLAlchemy transport hands every transport option to create_engine, so none
    # are set here; it polls its tables once a second.
    return config


def celery_init_app(app: Flask) -> Celery:
    """Attach a Celery app to the Flask app; tasks run inside the app context."""
    services = app.extensions["assistant"]

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_config(services.settings))
    celery_app.set_default()
    # Tasks reach the wired services through their app: no module-level singletons.
    celery_app.services = services  # type: ignore[attr-defined]
    app.extensions["celery"] = celery_app
    return celery_app
