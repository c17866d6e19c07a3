"""The web fixtures (an app with an admin, signed-in clients), shared with tests/web."""

from tests.web.conftest import (  # noqa: F401
    accounts,
    app,
    cheap_password_hashing,
    client_for,
    csrf_app,
    db,
    settings,
)
