"""``assistant worker``: a Celery worker (and beat) over the product's services. (``assistant
serve`` belongs to the web: web/cli.py.)"""

from __future__ import annotations

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
