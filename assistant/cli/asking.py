"""``assistant ask``: one question answered in process, as text or JSON."""

from __future__ import annotations

import json
from typing import Any

import click

from assistant.cli.base import handle_errors, main, services_of


@main.command()
@click.argument("question")
@click.option("--collection", default=None, help="Search only this collection.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@handle_errors
def ask(ctx: click.Context, question: str, collection: str | None, as_json: bool) -> None:
    """Answer a question from the corpus, with citations."""
    from assistant.asking.chat import guard_flags, validate_question

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
