"""``assistant init-db``, ``create-user``, ``create-token``, ``revoke-token``: the schema and
accounts."""

from __future__ import annotations

import click

from assistant.cli.base import handle_errors, main, services_of


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
    from assistant.accounts.users import create_user

    services = services_of(ctx)
    services.db.upgrade()
    user_id = create_user(services.db, email, password, role)
    click.echo(f"created {role} {email} (id {user_id})")


@main.command("create-token")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for (shown in lists).")
@click.pass_context
@handle_errors
def create_token_command(ctx: click.Context, email: str, name: str) -> None:
    """Create an API token for /v1 (printed once; only its SHA-256 is stored)."""
    from assistant.accounts.tokens import create_token

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
    from assistant.accounts.tokens import revoke_token

    services = services_of(ctx)
    revoke_token(services.db, token_id)
    click.echo(f"API token {token_id} revoked")
