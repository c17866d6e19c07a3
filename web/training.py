"""Admin pages and JSON endpoints of the learning loop: datasets, training runs, the
candidate-vs-active comparison, promote / roll back, and the retraining schedule.

Views validate, act through ``assistant.learning`` and the registry, and respond; the work
itself runs in the Celery worker (jobs with progress).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from assistant.errors import AssistantError, InvalidInput, NotFound
from assistant.infra import jobs
from assistant.learning import datasets, folders, runs
from assistant.learning import schedule as learning_schedule
from assistant.llm import registry
from assistant.storage import models
from assistant.storage.models import JobKind, Role
from training.config import QUANTIZATIONS
from training.datasets import EXPORT_FORMATS
from training.train import loss_curve_svg
from web.auth import current_user_id, role_required
from web.common import MAX_ID, job_json, json_body, send_task, services, to_json

logger = logging.getLogger(__name__)

bp = Blueprint("training", __name__)

RUN_FIELDS: dict[str, type] = {
    "method": str,
    "epochs": int,
    "learning_rate": float,
    "r": int,
    "alpha": int,
    "dropout": float,
    "batch_size": int,
    "max_seq_len": int,
    "max_steps": int,
    "seed": int,
}
EXPORT_MIMETYPES = {
    "alpaca": "application/json",
    "sharegpt": "application/jsonl",
    "dpo": "application/jsonl",
}


# ---- actions shared by the pages and the JSON endpoints --------------------------------------
def start_dataset_job(actor_id: int) -> int:
    return jobs.enqueue(services().db, send_task(), JobKind.DATASET, {}, actor_id)


def run_params(values: dict[str, Any]) -> dict[str, Any]:
    """Validated training-job params from a form or a JSON body (strings or JSON types)."""
    unknown = set(values) - set(RUN_FIELDS) - {"dataset_id", "quantization", "csrf_token"}
    if unknown:
        raise InvalidInput(f"unknown training settings: {', '.join(sorted(unknown))}")
    config: dict[str, Any] = {}
    for key, kind in RUN_FIELDS.items():
        value = values.get(key)
        if value is None or value == "":
            continue
        try:
            config[key] = kind(value) if not isinstance(value, bool) else _bad(key)
        except (TypeError, ValueError):
            raise InvalidInput(f"'{key}' must be a {kind.__name__}") from None
    runs.training_config(services(), config)  # raises InvalidInput when out of bounds
    if config.get("method") == "prefix":
        raise InvalidInput("prefix tuning cannot be exported to GGUF; choose lora or full")
    params: dict[str, Any] = {"config": config}
    dataset_id = values.get("dataset_id")
    if dataset_id not in (None, ""):
        try:
            number = int(dataset_id)
        except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite float
            raise InvalidInput("'dataset_id' must be an integer") from None
        if not -MAX_ID <= number <= MAX_ID:  # past the database's integers (SQLite raises)
            raise InvalidInput("'dataset_id' must be an integer") from None
        params["dataset_id"] = datasets.get_dataset(services().db, number).id
    elif datasets.latest_dataset(services().db) is None:
        raise InvalidInput("no dataset yet: build one from reviewed feedback first")
    quantization = values.get("quantization") or services().settings.learning.quantization
    if quantization not in QUANTIZATIONS:
        raise InvalidInput(f"'quantization' must be one of {', '.join(QUANTIZATIONS)}")
    params["quantization"] = quantization
    return params


def _bad(key: str) -> Any:
    raise ValueError(key)


def start_training_job(values: dict[str, Any], actor_id: int) -> int:
    params = run_params(values)
    return jobs.enqueue(services().db, send_task(), JobKind.TRAINING, params, actor_id)


def training_runs(limit: int = 20) -> list[models.Job]:
    with services().db.session() as s:
        return list(
            s.scalars(
                select(models.Job)
                .where(models.Job.kind.in_((JobKind.TRAINING, JobKind.DATASET)))
                .order_by(models.Job.id.desc())
                .limit(limit)
            )
        )


def dataset_json(d: datasets.DatasetInfo) -> dict[str, Any]:
    return {
        "id": d.id,
        "version": d.version,
        "content_hash": d.content_hash,
        "n_train": d.n_train,
        "n_validation": d.n_validation,
        "n_pairs": d.n_pairs,
        "created_at": to_json(d.created_at),
        "stats": d.provenance.get("stats", {}),
        "exports": {
            fmt: url_for("training.export_dataset", dataset_id=d.id, fmt=fmt)
            for fmt in EXPORT_FORMATS
        },
    }


def version_json(v: registry.ModelVersionInfo) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "kind": v.kind.value,
        "state": v.state.value,
        "dataset_id": v.dataset_id,
        "parent_id": v.parent_id,
        "created_at": to_json(v.created_at),
        "activated_at": to_json(v.activated_at),
        "metrics": v.metrics,
    }


def comparison_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Candidate and active side by side, one row per item set and measure."""
    rows = []
    for set_name, scores in (metrics.get("candidate") or {}).items():
        theirs = (metrics.get("active") or {}).get(set_name, {})
        for key in (
            "loss",
            "perplexity",
            "rougeL",
            "citation_precision",
            "refusal_rate",
            "tokens_per_s",
        ):
            rows.append(
                {
                    "set": set_name,
                    "measure": key,
                    "candidate": scores.get(key),
                    "active": theirs.get(key),
                }
            )
    return rows


# ---- pages -----------------------------------------------------------------------------------
@bp.get("/admin/training")
@role_required(Role.ADMIN)
def page() -> str:
    db = services().db
    versions = registry.list_versions(db)
    latest = next((v for v in versions if v.metrics.get("candidate")), None)
    return render_template(
        "admin_training.html",
        datasets=datasets.list_datasets(db),
        runs=training_runs(),
        versions=versions,
        latest=latest,
        comparison=comparison_rows(latest.metrics) if latest else [],
        schedule=learning_schedule.get_schedule(db),
        new_examples=datasets.new_examples_count(db),
        defaults=services().settings.learning,
        quantizations=QUANTIZATIONS,
        formats=list(EXPORT_FORMATS),
    )


def _form_action(action: Any, done: str) -> BaseResponse:
    try:
        result = action()
    except AssistantError as e:
        flash(str(e), "error")
    else:
        flash(done.format(result=result))
    return redirect(url_for("training.page"))


@bp.post("/admin/training/datasets")
@role_required(Role.ADMIN)
def form_build_dataset() -> BaseResponse:
    return _form_action(
        lambda: start_dataset_job(current_user_id()), "Dataset job {result} queued."
    )


@bp.post("/admin/training/runs")
@role_required(Role.ADMIN)
def form_start_run() -> BaseResponse:
    values = request.form.to_dict()
    return _form_action(
        lambda: start_training_job(values, current_user_id()), "Training job {result} queued."
    )


@bp.post("/admin/training/models/<int:version_id>/promote")
@role_required(Role.ADMIN)
def form_promote(version_id: int) -> BaseResponse:
    return _form_action(
        lambda: runs.promote(services(), version_id, current_user_id()).name,
        "{result} is now serving.",
    )


@bp.post("/admin/training/rollback")
@role_required(Role.ADMIN)
def form_rollback() -> BaseResponse:
    raw = request.form.get("version_id") or None

    def act() -> str:
        target = int(raw) if raw and raw.isdigit() else None
        if raw and target is None:
            raise InvalidInput("'version_id' must be an integer")
        return runs.rollback(services(), current_user_id(), target).name

    return _form_action(act, "Rolled back: {result} is now serving.")


@bp.post("/admin/training/schedule")
@role_required(Role.ADMIN)
def form_schedule() -> BaseResponse:
    form = request.form

    def act() -> dict[str, Any]:
        values: dict[str, Any] = {"enabled": form.get("enabled") == "on"}
        for key in ("interval_minutes", "min_new_examples"):
            raw = form.get(key, "").strip()
            if raw:
                if not raw.isdigit():
                    raise InvalidInput(f"'{key}' must be a whole number")
                values[key] = int(raw)
        return learning_schedule.set_schedule(services().db, values, current_user_id())

    return _form_action(act, "Schedule saved.")


@bp.get("/admin/training/datasets/<int:dataset_id>/<fmt>")
@role_required(Role.ADMIN)
def export_dataset(dataset_id: int, fmt: str) -> Response:
    if fmt not in EXPORT_FORMATS:
        raise NotFound(f"no export format {fmt!r}; one of {', '.join(EXPORT_FORMATS)}")
    dataset = datasets.get_dataset(services().db, dataset_id)
    path = dataset.path / EXPORT_FORMATS[fmt]
    if not path.is_file():
        raise NotFound(f"dataset {dataset_id} has no {fmt} export on disk")
    return send_file(
        path,
        mimetype=EXPORT_MIMETYPES[fmt],
        as_attachment=True,
        download_name=f"dataset-v{dataset.version:04d}-{EXPORT_FORMATS[fmt]}",
    )


def _training_job(job_id: int) -> models.Job:
    job = jobs.get_job(services().db, job_id)
    if job.kind != JobKind.TRAINING:
        raise NotFound(f"job {job_id} is not a training run")
    return job


def _loss_curve_file(job_id: int, suffix: str) -> Path:
    """Where a run's own loss curve is (it exists once the run has finished training)."""
    return folders.runs_dir(services()) / f"job-{job_id}" / f"loss_curve.{suffix}"


def _loss_curve_path(job_id: int, suffix: str) -> Path:
    _training_job(job_id)
    path = _loss_curve_file(job_id, suffix)
    if not path.is_file():
        raise NotFound(f"training job {job_id} has no loss curve yet")
    return path


@bp.get("/admin/training/runs/<int:job_id>/loss.svg")
@role_required(Role.ADMIN)
def loss_svg(job_id: int) -> Response:
    job = _training_job(job_id)
    path = _loss_curve_file(job_id, "svg")
    if path.is_file():
        return send_file(path, mimetype="image/svg+xml")
    # While the run trains (or before its first step): the curve so far, from the job row.
    live = (job.result or {}).get("loss_points") or []
    return Response(
        loss_curve_svg(live), mimetype="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


# ---- JSON ------------------------------------------------------------------------------------
@bp.get("/api/training/datasets")
@role_required(Role.ADMIN)
def api_datasets() -> Response:
    return jsonify(datasets=[dataset_json(d) for d in datasets.list_datasets(services().db)])


@bp.post("/api/training/datasets")
@role_required(Role.ADMIN)
def api_build_dataset() -> tuple[Response, int]:
    json_body()
    return jsonify(job_id=start_dataset_job(current_user_id())), 202


@bp.get("/api/training/runs")
@role_required(Role.ADMIN)
def api_runs() -> Response:
    return jsonify(runs=[job_json(j) for j in training_runs()])


@bp.post("/api/training/runs")
@role_required(Role.ADMIN)
def api_start_run() -> tuple[Response, int]:
    return jsonify(job_id=start_training_job(json_body(), current_user_id())), 202


@bp.get("/api/training/runs/<int:job_id>")
@role_required(Role.ADMIN)
def api_run(job_id: int) -> Response:
    job = jobs.get_job(services().db, job_id)
    if job.kind not in (JobKind.TRAINING, JobKind.DATASET):
        raise NotFound(f"job {job_id} is not a learning-loop job")
    return jsonify(job_json(job))


@bp.get("/api/training/runs/<int:job_id>/loss")
@role_required(Role.ADMIN)
def api_loss(job_id: int) -> Response:
    return jsonify(history=json.loads(_loss_curve_path(job_id, "json").read_text()))


@bp.get("/api/training/models")
@role_required(Role.ADMIN)
def api_models() -> Response:
    return jsonify(models=[version_json(v) for v in registry.list_versions(services().db)])


@bp.post("/api/training/models/<int:version_id>/promote")
@role_required(Role.ADMIN)
def api_promote(version_id: int) -> Response:
    json_body()
    return jsonify(version_json(runs.promote(services(), version_id, current_user_id())))


@bp.post("/api/training/rollback")
@role_required(Role.ADMIN)
def api_rollback() -> Response:
    body = json_body()
    target = body.get("version_id")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise InvalidInput("'version_id' must be an integer")
    return jsonify(version_json(runs.rollback(services(), current_user_id(), target)))


@bp.get("/api/training/schedule")
@role_required(Role.ADMIN)
def api_schedule() -> Response:
    db = services().db
    return jsonify(
        schedule=learning_schedule.get_schedule(db), new_examples=datasets.new_examples_count(db)
    )


@bp.put("/api/training/schedule")
@role_required(Role.ADMIN)
def api_set_schedule() -> Response:
    schedule = learning_schedule.set_schedule(services().db, json_body(), current_user_id())
    return jsonify(schedule=schedule)


# ---- OpenAPI (merged into /openapi.json by web/openapi.py) -----------------------------------
def _op(
    summary: str,
    responses: dict[str, str],
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": ["training"],
        "summary": summary,
        "description": "Admins only. Writes need the `X-CSRFToken` header of the session.",
        "responses": {
            code: {
                "description": text,
                "content": {
                    "application/json": {
                        "schema": {"type": "object"}
                        if code < "400"
                        else {"$ref": "#/components/schemas/Error"}
                    }
                },
            }
            for code, text in responses.items()
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


_ID = [{"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_VID = [{"name": "version_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
_ERR = {"401": "Not signed in", "403": "Not an admin"}
_RUN_BODY = {
    "type": "object",
    "properties": {
        "dataset_id": {"type": "integer", "description": "Default: the newest dataset."},
        "method": {"enum": ["lora", "full"]},
        "epochs": {"type": "integer", "minimum": 1, "maximum": 100},
        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.1},
        "r": {"type": "integer", "minimum": 1, "maximum": 256},
        "alpha": {"type": "integer", "minimum": 1, "maximum": 1024},
        "dropout": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 256},
        "max_seq_len": {"type": "integer", "minimum": 32, "maximum": 8192},
        "max_steps": {"type": "integer", "minimum": 0},
        "seed": {"type": "integer"},
        "quantization": {"enum": list(QUANTIZATIONS)},
    },
    "additionalProperties": False,
}
_SCHEDULE = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "interval_minutes": {"type": "integer", "minimum": 1, "maximum": 10080},
        "min_new_examples": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}

OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/api/training/datasets": {
        "get": _op(
            "Dataset versions with sizes, hashes and export links", {"200": "Datasets", **_ERR}
        ),
        "post": _op(
            "Queue a dataset job (reviewed feedback -> the next version)",
            {"202": "`{job_id}`", "400": "Not JSON", **_ERR},
            body={"type": "object"},
        ),
    },
    "/api/training/runs": {
        "get": _op("Recent dataset and training jobs with progress", {"200": "Jobs", **_ERR}),
        "post": _op(
            "Queue a training run (train, export, gate, promote or reject)",
            {"202": "`{job_id}`", "400": "Invalid settings", **_ERR},
            body=_RUN_BODY,
        ),
    },
    "/api/training/runs/{job_id}": {
        "get": _op(
            "One job: state, progress (step, loss, ETA), result and comparison",
            {"200": "The job", "404": "No such job", **_ERR},
            params=_ID,
        ),
    },
    "/api/training/runs/{job_id}/loss": {
        "get": _op(
            "The run's loss curve (train and validation loss per step)",
            {"200": "`{history: [...]}`", "404": "No curve yet", **_ERR},
            params=_ID,
        ),
    },
    "/api/training/models": {
        "get": _op(
            "Model versions with state and the stored comparison", {"200": "Versions", **_ERR}
        ),
    },
    "/api/training/models/{version_id}/promote": {
        "post": _op(
            "Serve this version (not a rejected one)",
            {
                "200": "The version",
                "404": "No such version",
                "409": "Rejected or file missing",
                **_ERR,
            },
            body={"type": "object"},
            params=_VID,
        ),
    },
    "/api/training/rollback": {
        "post": _op(
            "Serve the previous version, or `version_id`",
            {"200": "The version now serving", "409": "Nothing to roll back to", **_ERR},
            body={"type": "object", "properties": {"version_id": {"type": "integer"}}},
        ),
    },
    "/api/training/schedule": {
        "get": _op(
            "The retraining schedule and the count of new reviewed answers",
            {"200": "Schedule", **_ERR},
        ),
        "put": _op(
            "Change the schedule (beat follows it without a restart)",
            {"200": "The schedule", "400": "Invalid values", **_ERR},
            body=_SCHEDULE,
        ),
    },
}
