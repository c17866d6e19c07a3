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
from web.common import job_json, send_task, services, to_json
from web.openapi import Reply, operation, validate
from web.schemas import Empty, Job, Queued
from web.training_schemas import (
    DatasetList,
    LossHistory,
    RollbackRequest,
    RunList,
    RunRequest,
    ScheduleChange,
    ScheduleSaved,
    ScheduleState,
    Version,
    VersionList,
)

logger = logging.getLogger(__name__)

bp = Blueprint("training", __name__)


EXPORT_MIMETYPES = {
    "alpaca": "application/json",
    "sharegpt": "application/jsonl",
    "dpo": "application/jsonl",
}


# ---- actions shared by the pages and the JSON endpoints --------------------------------------
def start_dataset_job(actor_id: int) -> int:
    return jobs.enqueue(services().db, send_task(), JobKind.DATASET, {}, actor_id)


def run_params(run: RunRequest) -> dict[str, Any]:
    """The training job's params: the config overrides, the dataset and the quantization."""
    config = run.model_dump(exclude_none=True, exclude={"dataset_id", "quantization"})
    runs.training_config(services(), config)  # raises InvalidInput when out of bounds
    params: dict[str, Any] = {"config": config}
    if run.dataset_id is not None:
        params["dataset_id"] = datasets.get_dataset(services().db, run.dataset_id).id
    elif datasets.latest_dataset(services().db) is None:
        raise InvalidInput("no dataset yet: build one from reviewed feedback first")
    params["quantization"] = run.quantization or services().settings.learning.quantization
    return params


def start_training_job(run: RunRequest, actor_id: int) -> int:
    params = run_params(run)
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
    values = {k: v for k, v in request.form.items() if v != "" and k != "csrf_token"}
    return _form_action(
        lambda: start_training_job(validate(RunRequest, values, strict=False), current_user_id()),
        "Training job {result} queued.",
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
ADMIN = {401: "Not signed in", 403: "Not an admin"}
WRITE = {"csrf": True, "tags": ("training",), "description": "Admins only."}
READ = {"tags": ("training",), "description": "Admins only."}


@bp.get("/api/training/datasets")
@role_required(Role.ADMIN)
@operation(
    "Dataset versions with sizes, hashes and export links",
    ok={200: Reply("Datasets", DatasetList)},
    errors=ADMIN,
    **READ,
)
def api_datasets() -> Response:
    return jsonify(datasets=[dataset_json(d) for d in datasets.list_datasets(services().db)])


@bp.post("/api/training/datasets")
@role_required(Role.ADMIN)
@operation(
    "Queue a dataset job (reviewed feedback -> the next version)",
    body=Empty,
    ok={202: Reply("Queued", Queued)},
    errors={400: "Not JSON, or no CSRF token", **ADMIN},
    **WRITE,
)
def api_build_dataset(body: Empty) -> tuple[Response, int]:
    return jsonify(job_id=start_dataset_job(current_user_id())), 202


@bp.get("/api/training/runs")
@role_required(Role.ADMIN)
@operation(
    "Recent dataset and training jobs with progress",
    ok={200: Reply("Jobs", RunList)},
    errors=ADMIN,
    **READ,
)
def api_runs() -> Response:
    return jsonify(runs=[job_json(j) for j in training_runs()])


@bp.post("/api/training/runs")
@role_required(Role.ADMIN)
@operation(
    "Queue a training run (train, export, gate, promote or reject)",
    body=RunRequest,
    ok={202: Reply("Queued", Queued)},
    errors={400: "Invalid settings", **ADMIN, 404: "No such dataset"},
    **WRITE,
)
def api_start_run(body: RunRequest) -> tuple[Response, int]:
    return jsonify(job_id=start_training_job(body, current_user_id())), 202


@bp.get("/api/training/runs/<int:job_id>")
@role_required(Role.ADMIN)
@operation(
    "One job: state, progress (step, loss, ETA), result and comparison",
    ok={200: Reply("The job", Job)},
    errors={**ADMIN, 404: "No such job"},
    **READ,
)
def api_run(job_id: int) -> Response:
    job = jobs.get_job(services().db, job_id)
    if job.kind not in (JobKind.TRAINING, JobKind.DATASET):
        raise NotFound(f"job {job_id} is not a learning-loop job")
    return jsonify(job_json(job))


@bp.get("/api/training/runs/<int:job_id>/loss")
@role_required(Role.ADMIN)
@operation(
    "The run's loss curve (train and validation loss per step)",
    ok={200: Reply("The curve", LossHistory)},
    errors={**ADMIN, 404: "No curve yet"},
    **READ,
)
def api_loss(job_id: int) -> Response:
    return jsonify(history=json.loads(_loss_curve_path(job_id, "json").read_text()))


@bp.get("/api/training/models")
@role_required(Role.ADMIN)
@operation(
    "Model versions with state and the stored comparison",
    ok={200: Reply("Versions", VersionList)},
    errors=ADMIN,
    **READ,
)
def api_models() -> Response:
    return jsonify(models=[version_json(v) for v in registry.list_versions(services().db)])


@bp.post("/api/training/models/<int:version_id>/promote")
@role_required(Role.ADMIN)
@operation(
    "Serve this version (not a rejected one)",
    body=Empty,
    ok={200: Reply("The version", Version)},
    errors={400: "Not JSON", **ADMIN, 404: "No such version", 409: "Rejected or file missing"},
    **WRITE,
)
def api_promote(version_id: int, body: Empty) -> Response:
    return jsonify(version_json(runs.promote(services(), version_id, current_user_id())))


@bp.post("/api/training/rollback")
@role_required(Role.ADMIN)
@operation(
    "Serve the previous version, or `version_id`",
    body=RollbackRequest,
    ok={200: Reply("The version now serving", Version)},
    errors={400: "Invalid input", **ADMIN, 404: "No such version", 409: "Nothing to roll back to"},
    **WRITE,
)
def api_rollback(body: RollbackRequest) -> Response:
    return jsonify(version_json(runs.rollback(services(), current_user_id(), body.version_id)))


@bp.get("/api/training/schedule")
@role_required(Role.ADMIN)
@operation(
    "The retraining schedule and the count of new reviewed answers",
    ok={200: Reply("Schedule", ScheduleState)},
    errors=ADMIN,
    **READ,
)
def api_schedule() -> Response:
    db = services().db
    return jsonify(
        schedule=learning_schedule.get_schedule(db), new_examples=datasets.new_examples_count(db)
    )


@bp.put("/api/training/schedule")
@role_required(Role.ADMIN)
@operation(
    "Change the schedule (beat follows it without a restart)",
    body=ScheduleChange,
    ok={200: Reply("The schedule", ScheduleSaved)},
    errors={400: "Invalid values", **ADMIN},
    **WRITE,
)
def api_set_schedule(body: ScheduleChange) -> Response:
    values = body.model_dump(exclude_none=True)
    schedule = learning_schedule.set_schedule(services().db, values, current_user_id())
    return jsonify(schedule=schedule)
