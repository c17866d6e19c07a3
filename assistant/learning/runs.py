"""Training runs: train a candidate on a dataset, export it, score it against the active model,
gate it, and promote, reject or hold it through the model registry; promotion and rollback;
the recovery of runs lost with a worker.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from assistant.errors import InvalidInput
from assistant.infra import jobs
from assistant.infra.locks import Lease, holder
from assistant.learning.datasets import DatasetInfo, get_dataset, latest_dataset, local_dataset
from assistant.learning.folders import cache_dir, models_dir, runs_dir
from assistant.llm import registry
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import JobKind, JobState, ModelKind, ModelState
from training.examples import Example
from training.prompt_format import SYSTEM_PROMPT

if TYPE_CHECKING:
    from assistant.services import Services
    from training.config import Quantization, TrainingConfig

logger = logging.getLogger(__name__)


TRAINING_LOCK = "training"


MAX_LIVE_LOSS_POINTS = 1000  # kept in the job row while a run trains


# ---- training, the gate, rollout -------------------------------------------------------------
def training_config(services: Services, overrides: dict[str, Any] | None = None) -> TrainingConfig:
    """The settings' defaults with an admin's overrides; invalid values are InvalidInput."""
    from training.config import TrainingConfig

    s = services.settings.learning
    values: dict[str, Any] = {
        "method": s.method,
        "epochs": s.epochs,
        "learning_rate": s.learning_rate,
        "max_seq_len": s.max_seq_len,
        "batch_size": s.batch_size,
        "torch_threads": services.settings.llm.n_threads,
        "device": s.device,
        "qlora": s.qlora,
    }
    values.update(overrides or {})
    try:
        return TrainingConfig.from_json(values)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"invalid training settings: {exc}") from exc


def tolerances(services: Services) -> Any:
    from training.evaluate import Tolerances

    s = services.settings.learning
    return Tolerances(
        max_loss_increase=s.max_loss_increase,
        max_rouge_drop=s.max_rouge_drop,
        max_citation_precision_drop=s.max_citation_precision_drop,
        max_refusal_increase=s.max_refusal_increase,
        max_speed_drop=s.max_speed_drop,
    )


def _update_job(
    db: Database, job_id: int, fraction: float, message: str, detail: dict[str, Any]
) -> None:
    with db.session() as session:
        job = session.get(models.Job, job_id)
        if job is not None:
            job.progress = max(0.0, min(1.0, fraction))
            job.message = message[:2000]
            job.result = {**(job.result or {}), **detail}


def spread(items: list[Any], limit: int) -> list[Any]:
    """At most ``limit`` items taken evenly across the list (a dataset lists its examples by
    kind: the first ones alone would all be of one kind)."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def candidate_name(job_id: int) -> str:
    return f"ft-job{job_id}"


# Where each stage of a training job starts, as the job's progress (0-1).
PROGRESS_LOADING = 0.02


PROGRESS_TRAINING = (0.05, 0.65)  # from, to: in proportion to the steps done


PROGRESS_EXPORT = 0.68


PROGRESS_SCORE_ACTIVE = 0.75


PROGRESS_SCORE_CANDIDATE = 0.85


@dataclass(frozen=True)
class TrainingRequest:
    """What a training job asks for, read from its params and checked."""

    config: TrainingConfig
    dataset: DatasetInfo
    quantization: Quantization
    auto_promote: bool  # may serve as soon as it passes the gate


def train_and_evaluate(services: Services, job_id: int) -> dict[str, Any]:
    """Train on a dataset, export, score against the active model, then promote or reject:
    request -> train -> export -> score -> register and decide.

    Idempotent: a redelivered job reuses a complete run folder and export (both are renamed
    into place only when whole) and never registers a version twice.
    """
    from training.datasets import read_examples

    db, settings = services.db, services.settings
    job = jobs.get_job(db, job_id)
    request = training_request(services, dict(job.params or {}))
    with Lease(db, TRAINING_LOCK, ttl_s=settings.learning.lock_ttl_s, job_id=job_id) as lease:
        if not jobs.start_job(db, job_id):
            return dict(job.result)
        clean_partial_files(services)
        active = registry.active_version(db) or registry.ensure_base_version(
            db, settings.llm.model_path
        )
        run_dir = runs_dir(services) / f"job-{job_id}"
        # Read once: training validates on it, and the gate scores both models on it.
        validation = read_examples(request.dataset.path, "validation")
        run_summary = _train_stage(services, job_id, request, validation, active, run_dir, lease)
        lease.check()
        _update_job(db, job_id, PROGRESS_EXPORT, "exporting the merged model to GGUF", run_summary)
        candidate = _export_stage(services, job_id, request, active, run_dir)
        lease.check()
        decision = _score_stage(services, job_id, validation, active, candidate)
        metrics = {
            **decision.comparison,
            "gate": {"promote": decision.promote, "reasons": list(decision.reasons)},
            "run": run_summary,
            "training_config": request.config.to_json(),
            "dataset_version": request.dataset.version,
            "quantization": request.quantization,
            "compared_with": {"id": active.id, "name": active.name},
            "loss_curve": str(run_dir / "loss_curve.json"),
        }
        lease.check()
        version = _register_once(
            services, job_id, candidate, metrics, request.dataset.id, active.id
        )
        promoted = _decide_stage(services, version, decision, request, metrics, job.created_by)
        prune_candidates(services)
    result_json = {
        "model_version_id": version.id,
        "model_version": version.name,
        "promoted": promoted,
        "gate_passed": decision.promote,
        "awaiting_approval": decision.promote and not promoted,
        "reasons": list(decision.reasons),
        "dataset_id": request.dataset.id,
        **run_summary,
        "comparison": decision.comparison,
    }
    jobs.finish_job(db, job_id, result_json)
    return result_json


def training_request(services: Services, params: dict[str, Any]) -> TrainingRequest:
    """The job's params checked: its config within bounds, an exportable method, a dataset."""
    db = services.db
    config = training_config(services, params.get("config"))
    if config.method == "prefix":
        raise InvalidInput("prefix tuning cannot be merged into a GGUF; use lora or full")
    dataset = (
        get_dataset(db, int(params["dataset_id"]))
        if params.get("dataset_id")
        else latest_dataset(db)
    )
    if dataset is None:
        raise InvalidInput("no dataset yet: build one from reviewed feedback first")
    dataset = local_dataset(services, dataset)
    learning = services.settings.learning
    return TrainingRequest(
        config=config,
        dataset=dataset,
        quantization=params.get("quantization", learning.quantization),
        # A model trained from user feedback waits for an admin unless a setting (or the
        # operator's own bootstrap run) says it may serve as soon as it passes the gate.
        auto_promote=learning.auto_promote or params.get("promote") == "auto",
    )


class _StepReporter:
    """The training's progress callback: checks the lease at every step (a run that lost it
    stops) and writes the job's progress and live loss curve at most once a second."""

    def __init__(self, db: Database, job_id: int, lease: Lease) -> None:
        self.db, self.job_id, self.lease = db, job_id, lease
        self.loss_points: list[dict[str, float]] = []
        self.last_write = 0.0

    def __call__(self, step: int, total: int, loss: float, eta: float) -> None:
        self.lease.check()
        self.loss_points.append({"step": step, "train_loss": round(loss, 5)})
        now = time.monotonic()
        if now - self.last_write < 1.0 and step < total:
            return
        self.last_write = now
        low, high = PROGRESS_TRAINING
        _update_job(
            self.db,
            self.job_id,
            low + (high - low) * step / max(1, total),
            f"training: step {step}/{total}, loss {loss:.4f}, ETA {eta:.0f}s",
            {
                "step": step,
                "total_steps": total,
                "loss": round(loss, 5),
                "eta_s": round(eta),
                "loss_points": self.loss_points[-MAX_LIVE_LOSS_POINTS:],
            },
        )


def _train_stage(
    services: Services,
    job_id: int,
    request: TrainingRequest,
    validation: list[Example],
    active: registry.ModelVersionInfo,
    run_dir: Path,
    lease: Lease,
) -> dict[str, Any]:
    """Train into ``run_dir`` (a complete run folder of a redelivered job is reused); the
    run's summary."""
    from training.datasets import read_examples
    from training.train import train

    if (run_dir / "loss_curve.json").is_file():
        return {"reused_run": True}
    db, dataset = services.db, request.dataset
    _update_job(db, job_id, PROGRESS_LOADING, "loading the base model", {"dataset_id": dataset.id})
    result = train(
        request.config,
        read_examples(dataset.path, "train"),
        validation,
        active.serving_path,
        run_dir,
        cache_dir(services),
        SYSTEM_PROMPT,
        progress=_StepReporter(db, job_id, lease),
    )
    return {
        "steps": result.steps,
        "best_val_loss": result.best_val_loss,
        "final_train_loss": result.final_train_loss,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.seconds, 1),
        "steps_per_s": round(result.steps_per_s, 4),
    }


def _export_stage(
    services: Services,
    job_id: int,
    request: TrainingRequest,
    active: registry.ModelVersionInfo,
    run_dir: Path,
) -> Path:
    """The run merged into the active model and quantized to one GGUF file (reused when a
    redelivered job already wrote it whole)."""
    from training.export import export_run

    out = models_dir(services) / f"{candidate_name(job_id)}.gguf"
    if not out.is_file():
        export_run(
            run_dir,
            active.serving_path,
            cache_dir(services),
            out,
            quantization=request.quantization,
            threads=services.settings.llm.n_threads,
        )
    return out


def _score_stage(
    services: Services,
    job_id: int,
    validation: list[Example],
    active: registry.ModelVersionInfo,
    candidate: Path,
) -> Any:
    """The candidate and the active model on the same held-back sets; the gate's decision."""
    from training.evaluate import gate, items_from_examples, regression_items, score_model

    db, settings = services.db, services.settings
    learning = settings.learning
    _update_job(
        db, job_id, PROGRESS_SCORE_ACTIVE, "evaluating the candidate against the active model", {}
    )
    sets = {
        "validation": items_from_examples(spread(validation, learning.eval_validation_limit)),
        "regression": regression_items(limit=learning.regression_limit),
    }
    kwargs = {
        "max_tokens": learning.eval_max_tokens,
        "threads": settings.llm.n_threads,
        "n_ctx": settings.llm.n_ctx,  # the served context: what fits in serving fits here
    }
    active_scores = score_model(active.serving_path, sets, SYSTEM_PROMPT, **kwargs)
    _update_job(db, job_id, PROGRESS_SCORE_CANDIDATE, "evaluating the candidate", {})
    candidate_scores = score_model(candidate, sets, SYSTEM_PROMPT, **kwargs)
    return gate(candidate_scores, active_scores, tolerances(services))


def _decide_stage(
    services: Services,
    version: registry.ModelVersionInfo,
    decision: Any,
    request: TrainingRequest,
    metrics: dict[str, Any],
    actor_id: int | None,
) -> bool:
    """Serve, reject or hold the registered candidate for an admin; whether it now serves."""
    db = services.db
    promoted = bool(decision.promote and request.auto_promote)
    if promoted:
        registry.activate_version(db, version.id, actor_id, reason="promote")
    elif not decision.promote:
        registry.reject_version(db, version.id, metrics)
    else:
        logger.info("model version %s passed the gate; it awaits an admin", version.name)
    return promoted


def _register_once(
    services: Services,
    job_id: int,
    path: Path,
    metrics: dict[str, Any],
    dataset_id: int,
    parent_id: int,
) -> registry.ModelVersionInfo:
    name = candidate_name(job_id)
    for version in registry.list_versions(services.db):
        if version.name == name:
            return services.artifacts.publish_model(version)
    version = registry.register_version(
        services.db,
        name,
        kind=ModelKind.MERGED,
        base_path=path,
        metrics=metrics,
        dataset_id=dataset_id,
        parent_id=parent_id,
        notes=f"trained by job {job_id}",
    )
    # Shared before the gate can promote it, so every host can fetch what it will serve.
    return services.artifacts.publish_model(version)


def clean_partial_files(services: Services) -> None:
    """Remove what a killed run left half-written (temporary names only). Called while
    holding the training lease, so no live run is writing them."""
    for folder in (runs_dir(services), models_dir(services), cache_dir(services)):
        if not folder.is_dir():
            continue
        for leftover in folder.glob(".*"):
            logger.warning("removing partial file %s", leftover.name)
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def prune_candidates(services: Services) -> list[str]:
    """Delete model files of rejected and stale candidates beyond ``keep_candidates``;
    active and retired versions stay (rollback targets). Returns the deleted names."""
    keep = services.settings.learning.keep_candidates
    prunable = [
        v
        for v in registry.list_versions(services.db)  # newest first
        if v.state in (ModelState.REJECTED, ModelState.CANDIDATE)
        and v.kind is not ModelKind.BASE
        and v.base_path.is_file()
        and models_dir(services) in v.base_path.parents
    ]
    deleted = []
    for version in prunable[keep:]:
        services.artifacts.remove_model(version)
        version.base_path.unlink(missing_ok=True)
        shutil.rmtree(runs_dir(services) / version.name.replace("ft-job", "job-"), True)
        deleted.append(version.name)
    return deleted


def promote(services: Services, version_id: int, actor_id: int | None) -> registry.ModelVersionInfo:
    return registry.activate_version(services.db, version_id, actor_id, reason="promote")


def rollback(
    services: Services, actor_id: int | None, version_id: int | None = None
) -> registry.ModelVersionInfo:
    """Back to the previously active version, or to ``version_id`` (any earlier one)."""
    if version_id is None:
        return registry.rollback(services.db, actor_id)
    return registry.activate_version(services.db, version_id, actor_id, reason="rollback")


# ---- jobs lost with a worker, and the schedule -----------------------------------------------
def recover_stale_jobs(services: Services) -> list[int]:
    """Fail training jobs marked running whose lease is gone (their worker died)."""
    db = services.db
    live = holder(db, TRAINING_LOCK)
    failed = []
    with db.session() as session:
        for job in session.scalars(
            select(models.Job).where(
                models.Job.kind == JobKind.TRAINING, models.Job.state == JobState.RUNNING
            )
        ):
            if live is not None and live.job_id == job.id:
                continue
            job.state = JobState.FAILED
            job.message = "the worker was lost during training (its lease expired); start again"
            job.finished_at = models.utcnow()
            failed.append(job.id)
    for job_id in failed:
        logger.warning("training job %s failed: its worker was lost", job_id)
    return failed
