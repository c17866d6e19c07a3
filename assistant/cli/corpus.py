"""``assistant ingest``: files into the index, with progress."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from assistant.cli.base import handle_errors, main, services_of
from assistant.services import Services


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

    from assistant.corpus.ingest import ingest_paths

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
