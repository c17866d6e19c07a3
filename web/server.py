"""Serves the app under gunicorn: one worker process (one copy of the models), many threads."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from assistant.services import Services
from assistant.settings import Settings
from web import create_app


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    host = settings.web.host
    bind_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return {
        "bind": f"{bind_host}:{settings.web.port}",
        # One process, so the LLM, index and PII engine are loaded once; threads serve
        # requests concurrently while generation releases the GIL.
        "workers": 1,
        "worker_class": "gthread",
        "threads": settings.web.threads,
        # An answer streams for tens of seconds on CPU; 300 s leaves room for long ones.
        "timeout": 300,
        "graceful_timeout": 30,
        "keepalive": 5,
        # The app is built by run_server before the fork; models load lazily in the worker.
        "preload_app": False,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": settings.log_level.lower(),
        # gunicorn gives its loggers handlers of their own: the PII filter goes on them too.
        "post_worker_init": _filter_gunicorn_logs,
        "when_ready": _filter_gunicorn_logs,
    }


def _filter_gunicorn_logs(_server: Any) -> None:
    from assistant.infra.logging_setup import install_pii_filter

    install_pii_filter()


logger = logging.getLogger(__name__)


def warm_up(services: Services) -> None:
    """Load the models and the index in the background, so the first question is not slow."""

    def load() -> None:
        try:
            # On several machines: the shared index and model first, then followed.
            services.follow_artifacts()
            _ = services.scrubber, services.llm, services.embedder
            if services.index.exists():
                services.index.current()
            logger.info("models and index loaded")
        except Exception:  # the first request will report the same failure to the user
            logger.exception("warm-up failed")

    threading.Thread(target=load, name="warm-up", daemon=True).start()


class GunicornServer(BaseApplication):
    """gunicorn driven from Python with an app object, not an import string."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def run_server(settings: Settings, services: Services | None = None) -> None:
    """Run the whole web product until stopped (migrations and the first admin included)."""
    app = create_app(settings, services)
    # The master built the app (and ran migrations): drop its pooled connections so that the
    # forked worker does not share sockets with it.
    app.extensions["assistant"].db.dispose()
    options = gunicorn_options(settings)
    # Loading happens in the forked worker, never in the master: torch must not be forked.
    options["post_worker_init"] = lambda _worker: warm_up(app.extensions["assistant"])
    GunicornServer(app, options).run()
