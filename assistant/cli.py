"""The ``assistant`` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from assistant.errors import AssistantError, InvalidInput
from assistant.logging_setup import configure_logging
from assistant.services import Services, build_services
from assistant.settings import Settings
from assistant.storage.models import JobKind


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Product errors become a one-line message and exit code 2, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AssistantError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Domain assistant: grounded answers to medical and legal questions."""
    settings = Settings()
    configure_logging(settings.log_level)
    ctx.obj = settings


def services_of(ctx: click.Context) -> Services:
    if not isinstance(ctx.obj, Services):
        ctx.obj = build_services(ctx.obj)
    return ctx.obj


@main.command("init-db")
@click.pass_context
@handle_errors
def init_db(ctx: click.Context) -> None:
    """Create or upgrade the database schema and make the first admin (safe to run again)."""
    from assistant.provision import announce_admin_password, provision

    services = services_of(ctx)
    announce_admin_password(services, provision(services))
    click.echo(f"database ready: {services.db.engine.url.render_as_string(hide_password=True)}")


@main.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(["user", "reviewer", "admin"]), default="user")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="At least 8 characters (prompted when left out).",
)
@click.pass_context
@handle_errors
def create_user_command(ctx: click.Context, email: str, role: str, password: str) -> None:
    """Create a user account."""
    from assistant.users import create_user

    services = services_of(ctx)
    services.db.upgrade()
    user_id = create_user(services.db, email, password, role)
    click.echo(f"created {role} {email} (id {user_id})")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--collection",
    default=None,
    help="Collection for every document (default: the record's own, else the folder name).",
)
@click.pass_context
@handle_errors
def ingest(ctx: click.Context, paths: tuple[Path, ...], collection: str | None) -> None:
    """Ingest JSONL, txt, md, html and pdf files (folders are walked)."""

    services = services_of(ctx)
    services.db.upgrade()
    report = _ingest_with_progress(services, list(paths), collection)
    _print_ingest_report(report)
    if report.errors:
        sys.exit(1 if report.documents_added + report.documents_unchanged == 0 else 0)


def _ingest_with_progress(services: Services, paths: list[Path], collection: str | None) -> Any:
    from tqdm import tqdm

    from assistant.corpus import ingest_paths

    with tqdm(
        total=1000,
        unit="‰",
        desc="ingest",
        leave=False,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
    ) as bar:

        def progress(fraction: float, message: str) -> None:
            bar.n = int(fraction * 1000)
            bar.set_postfix_str(message, refresh=True)

        return ingest_paths(services, paths, collection, progress)


def _print_ingest_report(report: Any) -> None:
    click.echo(
        f"documents: {report.documents_added} added, {report.documents_replaced} replaced, "
        f"{report.documents_unchanged} unchanged, {report.duplicates_skipped} duplicates "
        f"skipped; passages added: {report.chunks_added} ({report.vectors_reused} vectors reused)"
    )
    for error in report.errors[:20]:
        click.echo(f"  not ingested: {error}", err=True)
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20} more", err=True)


@main.command()
@click.argument("question")
@click.option("--collection", default=None, help="Search only this collection.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def ask(ctx: click.Context, question: str, collection: str | None, as_json: bool) -> None:
    """Answer a question from the corpus, with citations."""
    from assistant.chat import guard_flags, validate_question

    services = services_of(ctx)
    question, collection = validate_question(services.settings, question, collection)
    # The answer cache and the model registry live in the database.
    services.db.upgrade()
    guard = services.input_guard.check(question)
    if not guard.allowed:
        # The input guard answers instead of the model (emergency, injection, out of scope).
        if as_json:
            payload = {"answer": guard.message, "citations": [], "flagged": True}
            payload |= {"flags": guard_flags(guard), "guard": guard.action}
            payload |= {"abstained": False, "origin": "none", "sources": []}
            click.echo(json.dumps(payload))
        else:
            click.echo(guard.message)
        return
    if as_json:
        answer = services.pipeline.answer(question, collection)
    else:
        answer = None
        for event in services.pipeline.stream(question, collection):
            if event.kind == "token":
                click.echo(event.data, nl=False)
            elif event.kind == "done":
                answer = event.data
        click.echo()
    assert answer is not None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "answer": answer.text,
                    "citations": [_citation_json(c) for c in answer.citations],
                    "sources": [_citation_json(c) for c in answer.sources],
                    "abstained": answer.abstained,
                    "origin": answer.origin,
                    "flagged": answer.flagged,
                    "flags": answer.flags,
                    "timings": answer.timings,
                    "guard": None,
                }
            )
        )
        return
    click.echo("\nSources:")
    for c in answer.citations or answer.sources:
        click.echo(f"  [{c.n}] {c.title} ({c.doc_id}) {c.source_url}")
    if answer.flagged:
        click.echo(f"Flagged for review: {', '.join(answer.flags)}")


def _citation_json(c: Any) -> dict[str, Any]:
    keys = ("n", "doc_id", "title", "start", "end", "score", "source_url")
    return {k: getattr(c, k) for k in keys}


@main.command()
@click.option("--beat/--no-beat", default=True, help="Also run the periodic scheduler.")
@click.pass_context
@handle_errors
def worker(ctx: click.Context, beat: bool) -> None:
    """Run a Celery worker (with the scheduler, by default)."""
    from assistant.provision import require_schema
    from web import create_app

    services = services_of(ctx)
    require_schema(services)  # the worker uses the schema; `init-db` or `serve` owns it
    app = create_app(services=services)
    celery_app = app.extensions["celery"]
    concurrency = ctx.obj.settings.broker.worker_concurrency
    argv = ["worker", "--loglevel=INFO", f"--concurrency={concurrency}"]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@main.command()
@click.option("--host", default=None, help="Address to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port (default from settings).")
@click.option(
    "--worker/--no-worker",
    "with_worker",
    default=True,
    help="Start a Celery worker and scheduler beside the web server.",
)
@click.option(
    "--ingest/--no-ingest",
    "with_ingest",
    default=True,
    help="Ingest the default corpus first when no index exists.",
)
@click.pass_context
@handle_errors
def serve(
    ctx: click.Context, host: str | None, port: int | None, with_worker: bool, with_ingest: bool
) -> None:
    """Run the whole product on this machine: web server, worker and scheduler."""
    from assistant.corpus import default_corpus_paths
    from assistant.provision import provision
    from retrieval.store import current_version_name
    from web.server import run_server

    services = services_of(ctx)
    settings = services.settings
    if host:
        settings.web.host = host
    if port:
        settings.web.port = port
    password = provision(services)
    # The shipped grounded model is merged and registered now, not on the first question.
    services.ensure_shipped_model()
    if with_ingest and current_version_name(settings.index_dir) is None:
        # In a child process: torch must not be loaded in the server's master before it forks.
        click.echo("No index yet: ingesting the default corpus (one time; progress below).")
        paths = [str(p) for p in default_corpus_paths(services)]
        subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", *paths], check=False)
    worker_process = _start_worker() if with_worker else None
    url = f"http://{settings.web.host}:{settings.web.port}/"
    click.echo(f"\n  Domain assistant: {url}")
    if password:
        click.echo(
            f"  Admin login: {settings.web.admin_email} / {password}  (shown once; "
            "change it or create accounts with `assistant create-user`)"
        )
    else:
        click.echo(f"  Admin login: {settings.web.admin_email} (password set earlier)")
    click.echo("")
    try:
        run_server(settings, services)
    finally:
        if worker_process is not None:
            worker_process.send_signal(signal.SIGTERM)
            try:
                worker_process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker_process.kill()


def _start_worker() -> subprocess.Popen[bytes]:
    # Same interpreter and environment, so the worker reads the same settings.
    return subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "worker", "--beat"], env=os.environ.copy()
    )


@main.group("eval")
def eval_group() -> None:
    """Measure quality on a labelled file."""


@eval_group.command("retrieval")
@click.option(
    "--qa",
    "qa_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL with question, doc_id and answer_char_start/end or evidence_spans.",
)
@click.option(
    "--k",
    default=5,
    show_default=True,
    type=click.IntRange(1, 40),
    help="Chunks counted for passage recall.",
)
@click.option(
    "--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default="hybrid", show_default=True
)
@click.option("--collection", default=None, help="Search only this collection.")
@click.option(
    "--limit", type=click.IntRange(1, None), default=None, help="Use only the first N questions."
)
@click.option(
    "--docs",
    type=click.Choice(["all", "held-out", "training"]),
    default="all",
    show_default=True,
    help="Only questions about the documents the learned parts never saw (held-out: "
    "md5(doc_id) % 5 == 0), or only the others.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def eval_retrieval(
    ctx: click.Context,
    qa_path: Path,
    k: int,
    mode: str,
    collection: str | None,
    limit: int | None,
    docs: str,
    as_json: bool,
) -> None:
    """Document recall@1/5/10, MRR@10 and passage recall@5 of the search."""
    from tqdm import tqdm

    from assistant.errors import IndexNotReady
    from assistant.evaluation import RETRIEVAL_KEYS, evaluate_retrieval, retrieval_cases
    from retrieval.types import IndexMissing

    services = services_of(ctx)
    cases = retrieval_cases(qa_path)
    if docs != "all":
        from assistant.bootstrap import is_held_out

        cases = [c for c in cases if is_held_out(c.doc_id) == (docs == "held-out")]
    cases = cases[:limit] if limit else cases
    if not cases:
        raise InvalidInput(f"{qa_path}: no questions about {docs} documents")
    try:
        services.index.current()
    except IndexMissing as exc:
        raise IndexNotReady(str(exc)) from exc
    with tqdm(total=len(cases), desc=f"eval retrieval ({mode})", leave=False, disable=None) as bar:
        figures = evaluate_retrieval(
            lambda q, depth: services.index.search(q, depth, collection, mode=mode),
            cases,
            k=k,
            progress=bar.update,
        )
    if as_json:
        # stdout carries exactly the interface's keys; passage recall at another --k goes
        # to stderr.
        extra = {key: figures.pop(key) for key in list(figures) if key not in RETRIEVAL_KEYS}
        if extra:
            click.echo(json.dumps(extra), err=True)
    _print_figures(figures, as_json)


@eval_group.command("pii")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL with text and spans [{start, end, entity_type}].",
)
@click.option(
    "--limit", type=click.IntRange(1, None), default=None, help="Use only the first N records."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def eval_pii(ctx: click.Context, data_path: Path, limit: int | None, as_json: bool) -> None:
    """Precision, recall and F2 of PII detection (entity-agnostic and type-aware)."""
    from tqdm import tqdm

    from assistant.evaluation import read_jsonl
    from safety.evaluation import Span, pii_case, score_pii

    services = services_of(ctx)
    try:
        cases = [pii_case(r) for r in read_jsonl(data_path)][:limit]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{data_path}: {exc}") from exc
    if not cases:
        raise InvalidInput(f"{data_path}: no records found")
    scrubber = services.scrubber

    def detect(text: str) -> list[Span]:
        return [Span(s.start, s.end, s.entity_type) for s in scrubber.detect(text)]

    with tqdm(total=len(cases), desc="eval pii", leave=False, disable=None) as bar:
        figures = score_pii(detect, cases, progress=bar.update)
    _print_figures(figures, as_json)


@eval_group.command("guard")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL with text and expect (block, emergency, out_of_scope, answer, answer_scrubbed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def eval_guard(ctx: click.Context, data_path: Path, as_json: bool) -> None:
    """Accuracy of the input guard per expectation, and its false-block rate."""
    from assistant.evaluation import read_jsonl
    from safety.evaluation import guard_case, score_guard
    from safety.guards import check_question, normalise_question

    services = services_of(ctx)
    try:
        cases = [guard_case(r) for r in read_jsonl(data_path)]
    except ValueError as exc:
        raise InvalidInput(f"{data_path}: {exc}") from exc
    if not cases:
        raise InvalidInput(f"{data_path}: no records found")
    limit = services.settings.safety.max_question_chars

    def decide(text: str) -> str:
        # The same steps as the chat: normalise, size check, then the guard.
        question = normalise_question(text)
        size = check_question(question, limit)
        return "block" if not size.allowed else services.input_guard.check(question).action

    needs_scrub = any(c.expect == "answer_scrubbed" for c in cases)
    figures = score_guard(decide, cases, services.scrubber.scrub if needs_scrub else None)
    _print_figures(figures, as_json)


@eval_group.command("answers")
@click.option(
    "--qa",
    "qa_path",
    required=True,
    type=click.Path(path_type=Path),
    help="JSONL with question, doc_id and answer (the reference).",
)
@click.option(
    "--limit", type=click.IntRange(1, None), default=None, help="Use only the first N questions."
)
@click.option("--collection", default=None, help="Search only this collection.")
@click.option(
    "--model", "model_name", default=None, help="A registered model version (default: the active)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def eval_answers(
    ctx: click.Context,
    qa_path: Path,
    limit: int | None,
    collection: str | None,
    model_name: str | None,
    as_json: bool,
) -> None:
    """ROUGE-L, citation precision/recall, refusal rate, TTFT and tokens/s of the answers."""
    from tqdm import tqdm

    from assistant import answer_evaluation as ev
    from assistant import registry
    from assistant.chat import validate_question
    from assistant.conversation import PastTurn
    from assistant.errors import ModelNotFound
    from assistant.pipeline import GenerationOptions
    from retrieval.evidence import split_sentences

    services = services_of(ctx)
    services.db.upgrade()
    cases = ev.answer_cases(qa_path, limit)
    pipeline = services.pipeline
    options = GenerationOptions()
    if model_name is not None:
        _ = services.llm  # registers the shipped model, as serving would
        named = [v for v in registry.list_versions(services.db) if v.name == model_name]
        if not named:
            raise ModelNotFound(f"no model version named {model_name!r}")
        options = GenerationOptions(version=named[0])
    documents: dict[str, str | None] = {}
    failures: list[str] = []

    def document_text(doc_id: str) -> str | None:
        if doc_id not in documents:
            documents[doc_id] = _document_text(services, doc_id)
        return documents[doc_id]

    def ask(question: str, history: list[PastTurn]) -> Any:
        # The same steps as the chat: validation, the input guard, then the pipeline.
        question, chosen = validate_question(services.settings, question, collection)
        guard = services.input_guard.check(question)
        if not guard.allowed:
            return guard.message
        return pipeline.answer(question, chosen, use_cache=False, history=history, options=options)

    def answer(case: ev.AnswerCase) -> ev.AnswerResult:
        history: list[PastTurn] = []
        try:
            for earlier in case.history:  # the product answers the first turn itself
                first = ask(earlier, history)
                titles = () if isinstance(first, str) else tuple(c.title for c in first.citations)
                history.append(PastTurn(earlier, titles))
            reply = ask(case.question, history)
        except AssistantError as exc:  # e.g. a timeout: this answer fails, the run goes on
            failures.append(exc.code)
            return ev.AnswerResult("", (), False, None, 0, 0.0)
        if isinstance(reply, str):
            return ev.AnswerResult(reply, (), True, None, 0, 0.0, origin="none")
        return ev.result_of(reply, document_text)

    embedder = services.embedder

    def baseline(case: ev.AnswerCase) -> ev.AnswerResult:
        hits = pipeline.retrieve(case.question, collection)
        if not hits:
            return ev.AnswerResult("", (), False, None, 0, 0.0, abstained=True, origin="none")
        top = hits[0].chunk
        spans = ev.baseline_sentences(case.question, top.text, embedder.encode, split_sentences)
        sentences = [top.text[a:b] for a, b in spans]
        cited = ev.CitedPassage(
            1,
            top.doc_id,
            top.start + spans[0][0],
            top.start + spans[-1][1],
            top.text[spans[0][0] : spans[-1][1]],
        )
        return ev.AnswerResult(
            " ".join(sentences),
            (cited,),
            False,
            None,
            0,
            0.0,
            origin="evidence",
            cited_by_sentence=tuple((s, (1,)) for s in sentences),
        )

    with tqdm(total=len(cases), desc="eval answers", leave=False, disable=None) as bar:
        figures = ev.score_answers(answer, cases, progress=bar.update, baseline=baseline)
    if failures:
        click.echo(f"{len(failures)} answers failed: {', '.join(sorted(set(failures)))}", err=True)
    _print_figures(figures, as_json)


def _document_text(services: Services, doc_id: str) -> str | None:
    from sqlalchemy import select

    from assistant.storage import models

    with services.db.session() as session:
        document = session.scalars(
            select(models.Document).where(models.Document.doc_id == doc_id)
        ).first()
        return document.text if document is not None else None


@main.command("create-token")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for (shown in lists).")
@click.pass_context
@handle_errors
def create_token_command(ctx: click.Context, email: str, name: str) -> None:
    """Create an API token for /v1 (printed once; only its SHA-256 is stored)."""
    from assistant.tokens import create_token

    services = services_of(ctx)
    services.db.upgrade()
    token, info = create_token(services.db, email, name)
    click.echo(
        f"API token {info.id} ({info.name}) for {email}; shown once, keep it safe:", err=True
    )
    click.echo(token)


@main.command("revoke-token")
@click.argument("token_id", type=int)
@click.pass_context
@handle_errors
def revoke_token_command(ctx: click.Context, token_id: int) -> None:
    """Revoke an API token by its id."""
    from assistant.tokens import revoke_token

    services = services_of(ctx)
    revoke_token(services.db, token_id)
    click.echo(f"API token {token_id} revoked")


def _print_figures(figures: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for name, inner in value.items():
                click.echo(f"  {name:>24}: {inner}")
        else:
            click.echo(f"{key:>22}: {value}")


# ---- the semantic input guard ------------------------------------------------------------------
@main.group("guard")
def guard_group() -> None:
    """The semantic input guard: its model, fitted on the labelled exemplars."""


@guard_group.command("fit")
@click.option(
    "--medical-qa",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Refresh safety/data/corpus_questions.jsonl from this MedQuAD QA file first.",
)
@click.option(
    "--legal-qa",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="... and from this CUAD QA file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def guard_fit(
    ctx: click.Context, medical_qa: Path | None, legal_qa: Path | None, as_json: bool
) -> None:
    """Calibrate thresholds by cross-validation, fit, and write safety/data/intent_model.json."""
    from assistant.guard_model import fit_and_write, write_corpus_questions

    services = services_of(ctx)
    if medical_qa is not None and legal_qa is not None:
        write_corpus_questions(medical_qa, legal_qa)
    report = fit_and_write(services.embedder)
    click.echo(json.dumps(report) if as_json else json.dumps(report, indent=1))


@main.group("retrieval")
def retrieval_group() -> None:
    """What the search learns from the labelled QA."""


@retrieval_group.command("fit-answer-types")
@click.option(
    "--qa",
    "qa_path",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Labelled QA (JSONL: question, doc_id, evidence_spans or answer_char_start/end).",
)
@click.option("--kind-field", default="category", show_default=True, help="Field naming the kind.")
@click.option(
    "--collection", default="legal", show_default=True, help="Documents the types apply to."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write them (default: the shipped retrieval/data/answer_types.npz).",
)
@click.pass_context
@handle_errors
def retrieval_fit_answer_types(
    ctx: click.Context, qa_path: Path, kind_field: str, collection: str, out: Path | None
) -> None:
    """Fit answer types from the QA's training documents over the index in service."""
    from assistant.answer_types_fit import fit_and_write
    from assistant.errors import IndexNotReady
    from retrieval.answer_types import SHIPPED_ANSWER_TYPES
    from retrieval.types import IndexMissing

    services = services_of(ctx)
    try:
        version = services.index.current()
    except IndexMissing as exc:
        raise IndexNotReady(str(exc)) from exc
    report = fit_and_write(
        qa_path, kind_field, collection, version, services.embedder, out or SHIPPED_ANSWER_TYPES
    )
    click.echo(json.dumps(report, indent=1))


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
    from assistant import learning

    services = services_of(ctx)
    services.db.upgrade()
    dataset = learning.build_dataset(services)
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
    from assistant import jobs, learning

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
    result = learning.train_and_evaluate(services, job_id)
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

    from assistant import bootstrap, jobs, learning

    services = services_of(ctx)
    services.db.upgrade()
    config = bootstrap.BootstrapConfig(
        medical_qa, legal_qa, seed=seed, max_medical=max_medical, max_legal=max_legal
    )
    count = bootstrap.token_counter(services.settings.llm.model_path)
    with tqdm(desc="bootstrap examples", leave=False, disable=None) as bar:
        dataset = bootstrap.build_dataset(services, config, count, progress=bar.update)
    record: dict[str, Any] = {
        "dataset_id": dataset.id,
        "n_train": dataset.n_train,
        "n_validation": dataset.n_validation,
        "stats": dataset.provenance.get("stats"),
    }
    if train:
        overrides = dict(bootstrap.GROUNDED_TRAINING, max_steps=max_steps)
        # The operator's own curated data, not user feedback: it may serve once it passes.
        params = {"config": overrides, "dataset_id": dataset.id, "promote": "auto"}
        job_id = jobs.create_job(services.db, JobKind.TRAINING, params, None)
        result = learning.train_and_evaluate(services, job_id)
        record |= {k: result[k] for k in ("model_version", "promoted", "reasons")}
        if publish_dir is not None:
            record["published"] = str(
                bootstrap.publish(services, result, job_id, dataset, publish_dir)
            )
    click.echo(json.dumps(record, default=str) if as_json else json.dumps(record, indent=1))


@learn_group.command("rollback")
@click.option("--to", "version_id", type=int, default=None, help="Default: the previous one.")
@click.pass_context
@handle_errors
def learn_rollback(ctx: click.Context, version_id: int | None) -> None:
    """Serve the previously active model version again (or --to a given one)."""
    from assistant import learning

    version = learning.rollback(services_of(ctx), None, version_id)
    click.echo(f"{version.name} is now serving")


if __name__ == "__main__":
    main()
