"""The ``assistant`` command as installed: the product's commands (assistant/cli/) plus
``assistant serve``, which runs the web server and so belongs to the web."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click

from assistant.cli import main
from assistant.cli.base import handle_errors, services_of

__all__ = ["main"]


@main.command()
@click.option("--host", default=None, help="Address to bind (default from settings).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default from settings)."
)
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
    from assistant.corpus.ingest import default_corpus_paths
    from assistant.provision import provision
    from retrieval.store import current_version_name
    from web.server import run_server

    web = {"host": host, "port": port}
    if any(web.values()):  # before the services are built from the settings
        ctx.obj = ctx.obj.changed(web={k: v for k, v in web.items() if v})
    services = services_of(ctx)
    settings = services.settings
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


if __name__ == "__main__":
    main()
