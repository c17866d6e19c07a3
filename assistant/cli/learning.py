"""``assistant learn ...``: the learning loop run in process (datasets, training, bootstrap,
rollback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from assistant.cli.base import handle_errors, main, services_of
from assistant.storage.models import JobKind


# ---- the learning loop (runs in this process; the admin page queues the same work) ------------
@main.group("learn")
def learn_group() -> None:
    """The learning loop: datasets from reviewed feedback, training runs, rollback."""


@learn_group.command("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def learn_dataset(ctx: click.Context, as_json: bool) -> None:
    """Build the next dataset version from reviewed feedback."""
    from assistant.learning import datasets

    services = services_of(ctx)
    services.db.upgrade()
    dataset = datasets.build_dataset(services)
    record = (
        {"dataset_id": None}
        if dataset is None
        else {
            "dataset_id": dataset.id,
            "version": dataset.version,
            "n_train": dataset.n_train,
            "n_validation": dataset.n_validation,
            "n_pairs": dataset.n_pairs,
            "path": str(dataset.path),
            "content_hash": dataset.content_hash,
        }
    )
    click.echo(json.dumps(record) if as_json else (record if dataset else "nothing new to add"))


@learn_group.command("train")
@click.option("--dataset-id", type=int, default=None, help="Default: the newest dataset.")
@click.option("--epochs", type=int, default=None)
@click.option("--learning-rate", type=float, default=None)
@click.option("--method", type=click.Choice(["lora", "full"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def learn_train(
    ctx: click.Context,
    dataset_id: int | None,
    epochs: int | None,
    learning_rate: float | None,
    method: str | None,
    as_json: bool,
) -> None:
    """Train, export, gate and (if it passes) promote a candidate, in this process."""
    from assistant.infra import jobs
    from assistant.learning import runs

    services = services_of(ctx)
    services.db.upgrade()
    config = {
        k: v
        for k, v in {"epochs": epochs, "learning_rate": learning_rate, "method": method}.items()
        if v is not None
    }
    params: dict[str, Any] = {"config": config}
    if dataset_id is not None:
        params["dataset_id"] = dataset_id
    job_id = jobs.create_job(services.db, JobKind.TRAINING, params, None)
    result = runs.train_and_evaluate(services, job_id)
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        if result["promoted"]:
            verdict = "promoted"
        elif result["awaiting_approval"]:
            verdict = "passed the gate; an admin promotes it on the training page"
        else:
            verdict = "rejected: " + "; ".join(result["reasons"])
        click.echo(f"{result['model_version']}: {verdict}")


@learn_group.command("bootstrap")
@click.option(
    "--medical-qa",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="MedQuAD QA JSONL (its dev split).",
)
@click.option(
    "--legal-qa",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="CUAD QA JSONL (its dev split).",
)
@click.option("--max-medical", type=click.IntRange(0, None), default=1800, show_default=True)
@click.option("--max-legal", type=click.IntRange(0, None), default=700, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--train/--no-train", default=True, help="Train, gate and register a model.")
@click.option("--max-steps", type=click.IntRange(0, None), default=0, help="0: a full epoch.")
@click.option(
    "--publish",
    "publish_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Copy the trained adapter and its manifest here (e.g. models/grounded-smollm2).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def learn_bootstrap(
    ctx: click.Context,
    medical_qa: Path,
    legal_qa: Path,
    max_medical: int,
    max_legal: int,
    seed: int,
    train: bool,
    max_steps: int,
    publish_dir: Path | None,
    as_json: bool,
) -> None:
    """Build the bootstrap dataset from the corpus QA and train the grounded model on it."""
    from tqdm import tqdm

    from assistant.infra import jobs
    from assistant.learning import bootstrap, grounded_model, runs

    services = services_of(ctx)
    services.db.upgrade()
    config = bootstrap.BootstrapConfig(
        medical_qa, legal_qa, seed=seed, max_medical=max_medical, max_legal=max_legal
    )
    count = grounded_model.token_counter(services.settings.llm.model_path)
    with tqdm(desc="bootstrap examples", leave=False, disable=None) as bar:
        dataset = bootstrap.build_dataset(services, config, count, progress=bar.update)
    record: dict[str, Any] = {
        "dataset_id": dataset.id,
        "n_train": dataset.n_train,
        "n_validation": dataset.n_validation,
        "stats": dataset.provenance.get("stats"),
    }
    if train:
        overrides = dict(grounded_model.GROUNDED_TRAINING, max_steps=max_steps)
        # The operator's own curated data, not user feedback: it may serve once it passes.
        params = {"config": overrides, "dataset_id": dataset.id, "promote": "auto"}
        job_id = jobs.create_job(services.db, JobKind.TRAINING, params, None)
        result = runs.train_and_evaluate(services, job_id)
        record |= {k: result[k] for k in ("model_version", "promoted", "reasons")}
        if publish_dir is not None:
            record["published"] = str(
                grounded_model.publish(services, result, job_id, dataset, publish_dir)
            )
    click.echo(json.dumps(record, default=str) if as_json else json.dumps(record, indent=1))


@learn_group.command("rollback")
@click.option("--to", "version_id", type=int, default=None, help="Default: the previous one.")
@click.pass_context
@handle_errors
def learn_rollback(ctx: click.Context, version_id: int | None) -> None:
    """Serve the previously active model version again (or --to a given one)."""
    from assistant.learning import runs

    version = runs.rollback(services_of(ctx), None, version_id)
    click.echo(f"{version.name} is now serving")
