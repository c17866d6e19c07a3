"""The explicit first-run step, run by the commands that start the product (`assistant serve`,
`assistant init-db`) and never by building the app or the worker: the database schema at its
newest migration, and a first admin account.

Building the web app has no side effects on the database, so any process may build it (the
worker, a test, a second web host) without migrating or creating accounts behind the
operator's back.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from assistant.accounts.users import ensure_admin
from assistant.errors import ServiceUnavailable

if TYPE_CHECKING:
    from assistant.services import Services


def provision(services: Services) -> str | None:
    """Migrate the database and make the first admin unless an admin exists. Returns the
    admin's generated password when one was just made (to be shown once), else None."""
    services.db.upgrade()
    web = services.settings.web
    used = ensure_admin(services.db, web.admin_email, web.admin_password)
    return used if used is not None and not web.admin_password else None


def announce_admin_password(services: Services, password: str | None) -> None:
    """Print a generated first-admin password once. Printed, not logged: logs are kept and
    shipped; this must be seen once and only here."""
    web = services.settings.web
    if password is not None:
        print(
            f"Created the first admin account {web.admin_email} with the password: {password}",
            file=sys.stderr,
            flush=True,
        )


def require_schema(services: Services) -> None:
    """For processes that use the database without owning its schema (the worker)."""
    if not services.db.is_current():
        raise ServiceUnavailable(
            "The database has no schema yet: run `assistant init-db` (or `assistant serve`) first."
        )
