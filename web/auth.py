"""Sign-in and sign-out, the session user, and the role check every view uses."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired, Length

from assistant.accounts.removal import remove_account
from assistant.accounts.users import (
    MAX_PASSWORD_CHARS,
    authenticate,
    change_password,
    end_sessions,
    get_user,
    normalize_email,
    verify_password,
)
from assistant.errors import AssistantError, InvalidInput
from assistant.infra import audit
from assistant.storage.models import Role
from web.common import services
from web.errors import wants_json

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class SessionUser(UserMixin):
    """The signed-in user as the views see it: a detached copy, not a database row."""

    id: int
    email: str
    role: Role
    session_version: int = 0

    def get_id(self) -> str:
        # The cookie names the account and its session version: a raised version (sign-out,
        # password or role change) makes every older cookie worthless, copies included.
        return f"{self.id}:{self.session_version}"


class LoginThrottle:
    """Refuses sign-in for an address and email after repeated failures.

    Kept in memory: the server runs one worker process, so one throttle sees every attempt.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 900.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def blocked(self, key: str) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.max_failures

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # forget stale keys so memory stays bounded
                for stale in [k for k, v in self._failures.items() if not self._recent(k, now)]:
                    del self._failures[stale]

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorized)
    app.extensions["login_throttle"] = LoginThrottle()


def _load_user(session_id: str) -> SessionUser | None:
    account, _, version = session_id.partition(":")
    try:
        user = get_user(services().db, int(account))
        cookie_version = int(version)
    except ValueError:
        return None
    if user is None or not user.is_active or cookie_version != (user.session_version or 0):
        return None
    return SessionUser(user.id, user.email, user.role, user.session_version or 0)


def _unauthorized() -> Response:
    if wants_json():
        response = jsonify(error="unauthorized", message="Sign in first.")
        response.status_code = 401
        return response
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target))


def role_required(*roles: Role) -> Callable[[F], F]:
    """Signed-in users only (401 JSON or a redirect to /login); with roles, only those (403)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                # Flask-Login sets it
                return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]  # same arguments as the view

    return decorate


def current_user_id() -> int:
    return int(current_user.id)


def _safe_next() -> str:
    """The ``next`` page if it is a path on this site; anything else could redirect offsite."""
    target = request.args.get("next", "")
    parts = urlsplit(target)
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not parts.scheme
        and not parts.netloc
    ):
        return target
    return url_for("chat.index")


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[InputRequired(), Length(max=255)])
    password = PasswordField(
        "Password", validators=[InputRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(_safe_next())
    form = LoginForm()
    if not form.validate_on_submit():
        error = "Enter your email and password." if request.method == "POST" else None
        return render_template("login.html", form=form, error=error)
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    key = f"{request.remote_addr}|{normalize_email(form.email.data or '')}"
    if throttle.blocked(key):
        error = "Too many failed attempts. Wait a few minutes and try again."
        return render_template("login.html", form=form, error=error), 429
    user = authenticate(services().db, form.email.data or "", form.password.data or "")
    if user is None:
        throttle.failed(key)
        return render_template("login.html", form=form, error="Wrong email or password.")
    throttle.reset(key)
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    login_user(SessionUser(user.id, user.email, user.role, user.session_version or 0))
    with services().db.session() as s:
        audit.record(s, user.id, "auth.login", target=f"user:{user.id}")
    return redirect(_safe_next())


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        end_sessions(services().db, current_user_id())  # a copied cookie stops working too
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


class PasswordForm(FlaskForm):
    current = PasswordField(
        "Current password", validators=[InputRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )
    new = PasswordField(
        "New password", validators=[InputRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    """Change one's own password; every other session of the account ends."""
    if not current_user.is_authenticated:
        # Flask-Login sets it
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    form = PasswordForm()
    if not form.validate_on_submit():
        error = "Enter both passwords." if request.method == "POST" else None
        return render_template("password.html", form=form, error=error)
    try:
        version = change_password(
            services().db, current_user_id(), form.current.data or "", form.new.data or ""
        )
    except InvalidInput as exc:
        return render_template("password.html", form=form, error=str(exc)), 400
    login_user(SessionUser(current_user.id, current_user.email, current_user.role, version))
    with services().db.session() as s:
        audit.record(s, current_user_id(), "auth.password", target=f"user:{current_user_id()}")
    return render_template("password.html", form=PasswordForm(), done=True)


class DeleteAccountForm(FlaskForm):
    password = PasswordField(
        "Your password", validators=[InputRequired(), Length(max=MAX_PASSWORD_CHARS)]
    )


@bp.route("/account/delete", methods=["GET", "POST"])
def delete_account() -> Any:
    """Remove one's own account with its conversations and feedback (asks for the password:
    a session left open on a shared computer must not be enough)."""
    if not current_user.is_authenticated:
        # Flask-Login sets it
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    form = DeleteAccountForm()
    if not form.validate_on_submit():
        error = "Enter your password." if request.method == "POST" else None
        return render_template("delete_account.html", form=form, error=error)
    user = get_user(services().db, current_user_id())
    if user is None or not verify_password(user.password_hash, form.password.data or ""):
        error = "The password is not right."
        return render_template("delete_account.html", form=form, error=error), 400
    try:
        remove_account(services().db, user.id, user.id, services().answer_cache)
    except AssistantError as exc:  # the last admin
        return render_template("delete_account.html", form=form, error=str(exc)), exc.http_status
    logout_user()
    session.clear()
    return render_template("delete_account.html", form=None, done=True)
