"""``assistant eval ...``, ``guard fit``, ``retrieval fit-answer-types``: measurements and fits
on labelled files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from assistant.cli.base import handle_errors, main, print_figures, services_of
from assistant.errors import InvalidInput


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
    from assistant.evaluation.retrieval import RETRIEVAL_KEYS, evaluate_retrieval, retrieval_cases
    from retrieval.types import IndexMissing

    services = services_of(ctx)
    cases = retrieval_cases(qa_path)
    if docs != "all":
        from training.held_out import is_held_out

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
    print_figures(figures, as_json)


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

    from assistant.evaluation.retrieval import read_jsonl
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
    print_figures(figures, as_json)


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
    from assistant.evaluation.retrieval import read_jsonl
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
    print_figures(figures, as_json)


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

    from assistant.evaluation import answers as ev
    from assistant.evaluation.answer_runs import ProductAnswers, options_for

    services = services_of(ctx)
    services.db.upgrade()
    cases = ev.answer_cases(qa_path, limit)
    product = ProductAnswers(services, collection, options_for(services, model_name))
    with tqdm(total=len(cases), desc="eval answers", leave=False, disable=None) as bar:
        figures = ev.score_answers(
            product.answer, cases, progress=bar.update, baseline=product.baseline
        )
    if product.failures:
        failures = ", ".join(sorted(set(product.failures)))
        click.echo(f"{len(product.failures)} answers failed: {failures}", err=True)
    print_figures(figures, as_json)


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
    from assistant.evaluation.guard_fit import fit_and_write, write_corpus_questions

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
    from assistant.errors import IndexNotReady
    from assistant.evaluation.answer_types_fit import fit_and_write
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
