"""The learning loop end to end, with real parts: Presidio scrubbing, transformers + peft
training from the served GGUF, the GGUF export, llama.cpp scoring, and a real Celery worker.

CPU cost is kept low: a handful of short examples, a few LoRA steps, short generations.
One good run goes through the worker (embedded broker; Redis too, where it runs); the
scrambled dataset is trained in-process; the fault test kills a worker after one step.
"""

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

from assistant.asking.prompts import SYSTEM_PROMPT
from assistant.infra import jobs
from assistant.infra.locks import acquire, holder, new_owner
from assistant.learning import datasets, folders, runs
from assistant.llm import registry
from assistant.services import Services
from assistant.settings import Settings
from assistant.storage import models
from assistant.worker import celery_config
from tests.assistant.learning.learning_helpers import (
    PII_VALUES,
    QA,
    TINY_LEARNING,
    qa_items,
    seed_feedback,
)
from tests.conftest import services_with_shared_models
from training.evaluate import ServedModel, rouge_l
from training.examples import Example

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def dense_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dense copy of the served GGUF for every test here (made once, ~20 s); a developer
    may keep one between sessions with ASSISTANT_TEST_DENSE_CACHE."""
    kept = os.environ.get("ASSISTANT_TEST_DENSE_CACHE")
    return Path(kept) if kept else tmp_path_factory.mktemp("dense-cache")


def env_for(data_dir: Path, cache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ, ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_LOG_LEVEL="INFO")
    env["ASSISTANT_LEARNING__CACHE_DIR"] = str(cache)
    for key, value in TINY_LEARNING.items():
        env[f"ASSISTANT_LEARNING__{key.upper()}"] = str(value)
    env.update(extra or {})
    return env


def settings_for(data_dir: Path, cache: Path, **extra: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "learning": {**TINY_LEARNING, "cache_dir": cache},
        **extra,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


def start_worker(env: dict[str, str]) -> subprocess.Popen[str]:
    # Its own process group, so that the fault test can kill the worker and its child at once.
    # Output goes to a file: a pipe nobody reads during a long run fills up and blocks it.
    log = Path(env["ASSISTANT_DATA_DIR"]) / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "worker", "--no-beat"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[str], env: dict[str, str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return (Path(env["ASSISTANT_DATA_DIR"]) / "worker.log").read_text(errors="replace")


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def finished(services: Services, job_id: int) -> bool:
    state = jobs.get_job(services.db, job_id).state
    return state in (models.JobState.SUCCEEDED, models.JobState.FAILED)


def mean_rouge(path: Path, items: list[QA]) -> float:
    """Mean ROUGE-L of the served model's greedy answers against the trained answers."""
    model = ServedModel(path, n_ctx=512)
    try:
        scores = []
        for item in items:
            context = f"[1] {item.title}\n{item.answer}"
            answer, _, _ = model.greedy(
                model.prompt_tokens(item.question, context, SYSTEM_PROMPT), 40
            )
            scores.append(rouge_l(answer, item.answer))
        return sum(scores) / len(scores)
    finally:
        model.close()


def scan_for_pii(paths: list[Path]) -> list[str]:
    """Injected personal values found in any text file under ``paths`` (and GGUF metadata)."""
    from training.export import gguf_metadata

    found = []
    for root in paths:
        for path in [root] if root.is_file() else root.rglob("*"):
            if not path.is_file():
                continue
            if path.suffix == ".gguf":
                text = json.dumps(gguf_metadata(path), default=str)
            elif path.suffix in (".safetensors", ".bin"):
                continue  # weights: numbers only
            else:
                text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{path.name}: {v}" for v in PII_VALUES if v.lower() in text.lower()]
    return found


# ---- (a) the loop through a real worker ------------------------------------------------------
def run_loop(
    tmp_path: Path, shared_models: Services, cache: Path, extra_env: dict[str, str]
) -> None:
    env = env_for(tmp_path / "var", cache, extra_env)
    overrides: dict[str, object] = {}
    if "ASSISTANT_BROKER__URL" in extra_env:
        overrides["broker"] = {"url": extra_env["ASSISTANT_BROKER__URL"]}
    settings = settings_for(tmp_path / "var", cache, **overrides)
    services = services_with_shared_models(settings, shared_models)
    services.db.upgrade()
    base = registry.ensure_base_version(services.db, settings.llm.model_path)
    items = qa_items(6)
    seed_feedback(services.db, items, with_pii=True)
    assert datasets.new_examples_count(services.db) == 6

    dataset_job = jobs.create_job(services.db, "dataset", {"then_train": True}, None)
    client = Celery("test-client")
    client.config_from_object(celery_config(settings))
    worker = start_worker(env)
    try:
        client.send_task("assistant.build_dataset", args=[dataset_job])
        wait_for(lambda: finished(services, dataset_job), 180, "the dataset job")
        dataset_result = jobs.get_job(services.db, dataset_job).result
        train_job = dataset_result.get("training_job_id")
        assert train_job, (jobs.get_job(services.db, dataset_job).message, dataset_result)
        wait_for(lambda: finished(services, train_job), 2400, "the training job")
    finally:
        output = stop(worker, env)
    job = jobs.get_job(services.db, train_job)
    assert job.state is models.JobState.SUCCEEDED, (job.message, output[-4000:])

    # Feedback -> dataset: everything consumed, files in place, personal data scrubbed.
    assert datasets.new_examples_count(services.db) == 0
    dataset = datasets.latest_dataset(services.db)
    assert dataset is not None and dataset.n_train + dataset.n_validation == 6
    assert dataset.n_pairs == 2  # the reviewer's edit and the user's correction

    # Gate -> registry: it passed, but a model trained from user feedback waits for an admin.
    result = job.result
    assert result["gate_passed"] is True, result["reasons"]
    assert result["promoted"] is False and result["awaiting_approval"] is True
    assert registry.active_version(services.db).id == base.id
    runs.promote(services, result["model_version_id"], None)
    active = registry.active_version(services.db)
    assert active is not None and active.id == result["model_version_id"] != base.id
    assert active.kind is models.ModelKind.MERGED and active.parent_id == base.id
    assert active.metrics["candidate"]["regression"]["n"] == 3
    assert {"loss", "rougeL", "refusal_rate", "tokens_per_s"} <= set(
        active.metrics["active"]["validation"]
    )
    assert result["steps"] > 0 and result["best_val_loss"] is not None

    # The served model's answers on the trained questions moved towards the trained answers.
    trained = [i for i in items if i.question in {e.instruction for e in _train_examples(dataset)}]
    before = mean_rouge(base.serving_path, trained)
    after = mean_rouge(active.serving_path, trained)
    assert after > before + 0.1, (before, after)

    # (d) No injected personal data in the dataset files, exports, the run or the model.
    run_dir = folders.runs_dir(services) / f"job-{train_job}"
    assert scan_for_pii([dataset.path, run_dir, active.serving_path]) == []
    assert (run_dir / "loss_curve.svg").is_file() and json.loads(
        (run_dir / "loss_curve.json").read_text()
    )

    # Rollback serves the base again; the candidate stays a rollback target.
    assert runs.rollback(services, None).id == base.id


def _train_examples(dataset: datasets.DatasetInfo) -> list[Example]:
    from training.datasets import read_examples

    return read_examples(dataset.path, "train")


def test_the_loop_in_a_real_worker_on_the_embedded_broker(
    tmp_path: Path, shared_models: Services, dense_cache: Path
) -> None:
    run_loop(tmp_path, shared_models, dense_cache, {})


@pytest.mark.redis
def test_the_loop_in_a_real_worker_on_redis(
    tmp_path: Path, shared_models: Services, dense_cache: Path, redis_url: str
) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    run_loop(tmp_path, shared_models, dense_cache, {"ASSISTANT_BROKER__URL": redis_url})


# ---- (b) a scrambled dataset is rejected and never served ------------------------------------
def test_a_scrambled_dataset_is_rejected_by_the_gate(
    tmp_path: Path, shared_models: Services, dense_cache: Path
) -> None:
    services = services_with_shared_models(
        settings_for(tmp_path / "var", dense_cache), shared_models
    )
    services.db.upgrade()
    base = registry.ensure_base_version(services.db, services.settings.llm.model_path)
    seed_feedback(services.db, qa_items(6), scramble=True)
    assert datasets.build_dataset(services) is not None
    job_id = jobs.create_job(services.db, "training", {}, None)
    result = runs.train_and_evaluate(services, job_id)

    assert result["promoted"] is False and result["reasons"]
    candidate = registry.get_version(services.db, result["model_version_id"])
    assert candidate.state is models.ModelState.REJECTED
    assert registry.active_version(services.db).id == base.id  # type: ignore[union-attr]
    with pytest.raises(Exception, match="rejected"):
        runs.promote(services, candidate.id, None)
    assert jobs.get_job(services.db, job_id).state is models.JobState.SUCCEEDED


# ---- (c) a worker killed mid-training ----------------------------------------------------------
def test_a_worker_killed_mid_training_leaves_the_job_failed_and_the_model_unchanged(
    tmp_path: Path, shared_models: Services, dense_cache: Path
) -> None:
    ttl = 6
    settings = settings_for(tmp_path / "var", dense_cache).changed(learning={"lock_ttl_s": ttl})
    services = services_with_shared_models(settings, shared_models)
    services.db.upgrade()
    base = registry.ensure_base_version(services.db, settings.llm.model_path)
    seed_feedback(services.db, qa_items(6))
    datasets.build_dataset(services)
    job_id = jobs.create_job(services.db, "training", {"config": {"epochs": 50}}, None)

    client = Celery("test-client")
    client.config_from_object(celery_config(settings))
    worker = start_worker(
        env_for(tmp_path / "var", dense_cache, {"ASSISTANT_LEARNING__LOCK_TTL_S": str(ttl)})
    )
    try:
        client.send_task("assistant.train", args=[job_id])
        wait_for(
            lambda: jobs.get_job(services.db, job_id).result.get("step", 0) >= 1, 300, "a step"
        )
        assert holder(services.db, runs.TRAINING_LOCK).job_id == job_id  # type: ignore[union-attr]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()

    assert jobs.get_job(services.db, job_id).state is models.JobState.RUNNING
    # The lease is not renewed any more: it expires, and another owner may take it.
    wait_for(lambda: holder(services.db, runs.TRAINING_LOCK) is None, ttl + 10, "expiry")
    assert runs.recover_stale_jobs(services) == [job_id]
    job = jobs.get_job(services.db, job_id)
    assert job.state is models.JobState.FAILED and "lost" in job.message
    taken = acquire(services.db, runs.TRAINING_LOCK, new_owner(), ttl_s=5)
    assert taken.job_id is None

    # Nothing half-written was registered, and the base still serves.
    assert [v.name for v in registry.list_versions(services.db)] == ["base"]
    assert registry.active_version(services.db).id == base.id  # type: ignore[union-attr]
    trained = folders.models_dir(services)
    assert not list(trained.glob("*.gguf")) if trained.is_dir() else True
    run_folder = folders.runs_dir(services)
    assert not (run_folder / f"job-{job_id}").exists()  # only a temporary folder, if anything
    runs.clean_partial_files(services)
    assert not run_folder.is_dir() or not list(run_folder.iterdir())


def test_a_dataset_folder_left_by_a_crash_does_not_jam_later_builds(fresh_services) -> None:
    from assistant.learning import datasets, folders
    from tests.assistant.learning.learning_helpers import qa_items, seed_feedback

    services = fresh_services
    seed_feedback(services.db, qa_items(3))
    # A build that crashed after renaming its folder and before recording its row.
    (folders.datasets_dir(services) / "v0001").mkdir(parents=True)
    dataset = datasets.build_dataset(services)
    assert dataset is not None and dataset.version == 2
