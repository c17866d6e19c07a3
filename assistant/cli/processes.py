"""``assistant worker``: a Celery worker (and beat) over the product's services. (``assistant
serve`` belongs to the web: web/cli.py.)"""

from __future__ import annotations

from pathlib import Path

import click

from assistant.cli.base import handle_errors, main, services_of


@main.command()
@click.option("--beat/--no-beat", default=True, help="Also run the periodic scheduler.")
@click.pass_context
@handle_errors
def worker(ctx: click.Context, beat: bool) -> None:
    """Run a Celery worker (with the scheduler, by default)."""
    from assistant.provision import require_schema
    from assistant.worker import make_celery

    services = services_of(ctx)
    require_schema(services)  # the worker uses the schema; `init-db` or `serve` owns it
    celery_app = make_celery(services)
    concurrency = ctx.obj.settings.broker.worker_concurrency
    argv = ["worker", "--loglevel=INFO", f"--concurrency={concurrency}"]
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@main.command("model-server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
@handle_errors
def model_server(ctx: click.Context, host: str, port: int) -> None:
    """Serve the registry's active model version with llama.cpp's server (llm.parallel slots),
    switching on every promotion or rollback, for web hosts with llm.backend=remote."""
    import signal
    import threading

    from assistant.llm.batched import LlamaServer
    from assistant.llm.model_server import ModelServerAgent
    from assistant.llm.registry import ModelVersionInfo
    from assistant.provision import require_schema

    services = services_of(ctx)
    require_schema(services)
    services.prepare_registry()
    settings = services.settings

    def start(version: ModelVersionInfo, path: Path) -> LlamaServer:
        return LlamaServer(
            settings.llm, path, version.adapter_path, host=host, port=port, alias=version.name
        )

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    artifacts = settings.artifacts
    interval = artifacts.poll_s if artifacts.enabled else max(settings.llm.version_check_s, 0.5)
    click.echo(f"model server on http://{host}:{port}/v1, following the registry")
    ModelServerAgent(services.db, services.model_file, start).run(stop, interval)
