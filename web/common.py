"""Helpers the blueprints share: the services, JSON bodies and the shapes of answers."""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.routing import IntegerConverter

from assistant.asking.chat import StreamEvent
from assistant.errors import AssistantError, InvalidInput
from assistant.infra.jobs import SendTask
from assistant.services import Services
from assistant.storage.models import Job

MAX_ID = 2**63 - 1  # the database's BIGINT; SQLite raises OverflowError past it


class BoundedInt(IntegerConverter):
    """``<int:...>`` limited to what the database can hold."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(*args, **kwargs)


def services() -> Services:
    return current_app.extensions["assistant"]


def send_task() -> SendTask:
    """How this app hands a job to the workers (its Celery app's send_task)."""
    return current_app.extensions["celery"].send_task


def json_body() -> dict[str, Any]:
    """The request's JSON object; InvalidInput for anything else."""
    if not request.is_json:
        raise InvalidInput("Send a JSON object with Content-Type: application/json.")
    try:
        body = request.get_json(silent=True)  # a body over MAX_CONTENT_LENGTH still raises 413
    except RecursionError:  # nesting deeper than the JSON parser goes
        raise InvalidInput("The body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.")
    return body


def to_json(value: Any) -> Any:
    """Dataclass views as plain dicts (datetimes stay for the JSON provider)."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def _json_default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with dates as ISO 8601 (its default is the HTTP date format)."""

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, datetime | date):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def job_json(job: Job) -> dict[str, Any]:
    """A background job as every JSON endpoint shows it (the OpenAPI ``Job``)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state.value,
        "progress": job.progress,
        "message": job.message,
        "params": job.params,
        "result": job.result,
        "created_at": to_json(job.created_at),
        "started_at": to_json(job.started_at),
        "finished_at": to_json(job.finished_at),
    }


def sse(event: StreamEvent) -> str:
    """One server-sent event; ``json.dumps`` escapes newlines, so data stays on one line."""
    data = json.dumps(event.data, ensure_ascii=False, default=_json_default)
    return f"event: {event.kind}\ndata: {data}\n\n"


def status_for(code: str) -> int:
    """The HTTP status of an error code from a stream's ``error`` event (500 if unknown)."""
    pending = list(AssistantError.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls.http_status
        pending.extend(cls.__subclasses__())
    return 500
