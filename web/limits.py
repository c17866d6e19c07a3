"""Rate limits on asking (chat, API, /v1), feedback and signing in (Flask-Limiter; in memory,
or Redis when configured)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_login import current_user

from assistant.settings import WebSettings

logger = logging.getLogger(__name__)

ASK_ENDPOINTS = ("chat.ask", "api.ask", "openai_api.chat_completions")
FEEDBACK_ENDPOINTS = ("chat.feedback", "api.feedback")
LOGIN_ENDPOINTS = ("auth.login",)


def client_address() -> str:
    # Behind a proxy, configure werkzeug's ProxyFix so that remote_addr is the client's.
    return request.remote_addr or "unknown"


def account_or_address() -> str:
    """Signed-in requests count per account (several people may share one address); API
    requests per account too, whichever of its tokens they use."""
    token = getattr(g, "api_token", None)
    if token is not None:
        return f"user:{token.user_id}"
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"addr:{client_address()}"


def init_app(app: Flask, settings: WebSettings) -> Limiter:
    limiter = Limiter(
        key_func=client_address,
        app=app,
        storage_uri=settings.rate_limit_storage,
        headers_enabled=True,  # X-RateLimit-* and Retry-After on limited answers
        strategy="moving-window",
        # A broken Redis must not take sign-in and chat down with it.
        in_memory_fallback_enabled=settings.rate_limit_storage != "memory://",
        swallow_errors=True,
    )
    app.extensions["rate_limiter"] = limiter
    return limiter


def apply(app: Flask, settings: WebSettings) -> None:
    """Put the limits on the views (called after the blueprints are registered)."""
    limiter: Limiter = app.extensions["rate_limiter"]
    views: dict[str, Any] = app.view_functions
    # One budget for both ways of asking (the chat stream and the JSON API).
    ask_limit = limiter.shared_limit(
        settings.ask_rate_limit, scope="ask", key_func=account_or_address
    )
    for endpoint in ASK_ENDPOINTS:
        views[endpoint] = ask_limit(views[endpoint])
    # Feedback costs the server a PII pass per text: one budget per account for both ways.
    feedback_limit = limiter.shared_limit(
        settings.feedback_rate_limit, scope="feedback", key_func=account_or_address
    )
    for endpoint in FEEDBACK_ENDPOINTS:
        views[endpoint] = feedback_limit(views[endpoint])
    for endpoint in LOGIN_ENDPOINTS:
        # Only attempts count: showing the form is free.
        views[endpoint] = limiter.limit(
            settings.login_rate_limit, methods=["POST"], key_func=client_address
        )(app.view_functions[endpoint])
