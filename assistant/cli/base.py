"""The ``assistant`` command group: settings loaded once, services built on first use, product
errors as one line and exit code 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from assistant.errors import AssistantError
from assistant.infra.logging_setup import configure_logging
from assistant.services import Services, build_services
from assistant.settings import Settings


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


def print_figures(figures: dict[str, Any], as_json: bool) -> None:
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
