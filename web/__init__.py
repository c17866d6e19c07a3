"""The web front of the product: an application factory and one blueprint per audience."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask.wrappers import Response
from flask_wtf.csrf import CSRFProtect

from assistant.corpus.uploads import MAX_UPLOAD_REQUEST
from assistant.services import Services, build_services
from assistant.settings import Settings
from assistant.worker import make_celery
from safety.flags import is_guard_flag
from web import (
    admin,
    api,
    auth,
    chat,
    errors,
    limits,
    metrics,
    openai_api,
    openapi,
    review,
    training,
)
from web.common import BoundedInt, JSONProvider

logger = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = 1024 * 1024

SECURITY_HEADERS = {
    # No inline scripts or styles anywhere: every script and stylesheet is a static file.
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin referrers are kept: Flask-WTF checks the Referer of HTTPS form posts.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    """Build the web app (builds the services too unless they are given). Nothing else: the
    database is migrated and the first admin made by assistant.provision, which the commands
    that start the product run first."""
    if settings is None:
        settings = services.settings if services is not None else Settings()
    if services is None:
        services = build_services(settings)

    app = Flask(__name__)
    # Ids in paths fit the database's 64-bit integers; a longer number is a 404, not a 500.
    app.url_map.converters["int"] = BoundedInt
    app.json = JSONProvider(app)
    _configure(app, settings)
    app.extensions["assistant"] = services
    # The web sends its jobs (ingest, datasets, training) through this Celery app.
    app.extensions["celery"] = make_celery(services)

    # Before CSRFProtect's own hook, which reads the form: uploads may exceed the 1 MiB cap.
    app.before_request(_upload_limit)
    csrf = CSRFProtect(app)
    limits.init_app(app, settings.web)
    auth.init_app(app)
    errors.init_app(app)
    _register_blueprints(app, csrf)
    limits.apply(app, settings.web)

    app.after_request(_security_headers)
    # A guard's own reply (emergency, refusal, scope) is flagged for review but has no sources.
    app.jinja_env.tests["guard_flag"] = is_guard_flag
    return app


def _configure(app: Flask, settings: Settings) -> None:
    """Cookies, body size and CSRF settings; the proxy headers trusted, if any."""
    app.config.from_mapping(
        SECRET_KEY=settings.web.secret_key or _stored_secret_key(settings.data_dir),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.session_cookie_secure,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.web.session_cookie_secure,
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        # The token is bound to the session; a time limit would break a chat tab left open.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if settings.web.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.web.trusted_proxies
        # Flask documents wrapping wsgi_app this way; mypy sees a method replaced.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
        app.session_interface = _SecureOverHttps()


def _register_blueprints(app: Flask, csrf: CSRFProtect) -> None:
    for module in (auth, chat, review, admin, api, openapi, training, openai_api, metrics):
        app.register_blueprint(module.bp)
    # The JSON API is exempt from CSRF because it accepts only application/json bodies
    # (see web/api.py): a cross-site page cannot send those without a CORS preflight, which
    # this app never grants, and the session cookie is SameSite=Lax besides.
    csrf.exempt(api.bp)
    # Bearer-token API (no cookies): CSRF does not apply.
    csrf.exempt(openai_api.bp)


def _upload_limit() -> None:
    """The large body limit only for a signed-in admin's upload: anyone else's body is refused
    at the normal limit before it is read (an anonymous 200 MiB POST was parsed and spooled)."""
    if request.endpoint in admin.UPLOAD_ENDPOINTS:
        from flask_login import current_user

        from assistant.storage.models import Role

        if current_user.is_authenticated and current_user.role == Role.ADMIN:
            request.max_content_length = MAX_UPLOAD_REQUEST


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages and answers may hold medical or legal details: keep them out of shared caches.
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


class _SecureOverHttps(SecureCookieSessionInterface):
    """Behind a trusted proxy, a client on HTTPS gets a Secure session cookie (the app
    itself sees plain HTTP from the proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app)) or request.scheme == "https"


def _stored_secret_key(data_dir: Path) -> str:
    """A random key made once and kept in ``data_dir/secret_key`` (mode 0600)."""
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if key:
            return key
        raise RuntimeError(f"{path} is empty: delete it to make a new key") from None
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    logger.info("Created a new session key in %s", path)
    return key
