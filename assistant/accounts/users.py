"""Accounts: argon2 password hashing, creation, authentication and the first admin."""

from __future__ import annotations

import functools
import logging
import re
import secrets
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from assistant.errors import Conflict, InvalidInput
from assistant.storage.db import Database
from assistant.storage.models import Role, User

logger = logging.getLogger(__name__)

MIN_PASSWORD_CHARS = 8
# Hashing cost grows with the input: a cap keeps a huge "password" from tying up a thread.
MAX_PASSWORD_CHARS = 1024
# A dot in the domain is not required: the default admin is admin@localhost.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}$")

# argon2id with the library's current recommended parameters (a stateless configuration).
HASHER: Final = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash of nothing anyone knows, made once: verified against for unknown emails."""
    return hash_password(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _validate(email: str, password: str, role: Role | str) -> tuple[str, Role]:
    if not isinstance(email, str) or not _EMAIL.match(normalize_email(email)):
        raise InvalidInput("Enter a valid email address.")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"The password must have at least {MIN_PASSWORD_CHARS} characters.")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"The password must have at most {MAX_PASSWORD_CHARS} characters.")
    try:
        return normalize_email(email), Role(role)
    except ValueError:
        raise InvalidInput(f"Unknown role {role!r}.") from None


def create_user(db: Database, email: str, password: str, role: Role | str = Role.USER) -> int:
    """Create an account; InvalidInput for a bad email, password or role, Conflict if taken."""
    email, role = _validate(email, password, role)
    password_hash = hash_password(password)
    try:
        with db.session() as s:
            if s.scalar(select(User.id).where(User.email == email)) is not None:
                raise Conflict("An account with this email already exists.")
            user = User(email=email, password_hash=password_hash, role=role, is_active=True)
            s.add(user)
            s.flush()
            return user.id
    except IntegrityError:  # the same email inserted by a concurrent request
        raise Conflict("An account with this email already exists.") from None


def authenticate(db: Database, email: str, password: str) -> User | None:
    """The active user with this email and password, or None.

    An unknown email costs one hash verification too, so that timing does not tell which
    emails have accounts. A hash made with older parameters is upgraded on success.
    """
    if not isinstance(email, str) or not isinstance(password, str):
        return None
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    with db.session() as s:
        user = s.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None or not user.is_active:
            verify_password(_dummy_hash(), password)
            return None
        if not verify_password(user.password_hash, password):
            return None
        if HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
            logger.info("Upgraded the password hash of user %d", user.id)
        return user


def end_sessions(db: Database, user_id: int) -> int:
    """End every session of the account (their cookies stop working); the new version."""
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            return 0
        user.session_version = (user.session_version or 0) + 1
        return user.session_version


def change_password(db: Database, user_id: int, current: str, new: str) -> int:
    """Set a new password after checking the current one; every session ends (the caller
    signs the current one in again). Returns the new session version."""
    if not isinstance(new, str) or len(new) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"The new password must have at least {MIN_PASSWORD_CHARS} characters.")
    if len(new) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"The new password must have at most {MAX_PASSWORD_CHARS} characters.")
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None or not verify_password(user.password_hash, current or ""):
            raise InvalidInput("The current password is not right.")
        user.password_hash = hash_password(new)
        user.session_version = (user.session_version or 0) + 1
        return user.session_version


def get_user(db: Database, user_id: int) -> User | None:
    with db.session() as s:
        return s.get(User, user_id)


def ensure_admin(db: Database, email: str, password: str = "") -> str | None:
    """Create the first admin unless an admin exists; returns the password used, else None.

    An empty ``password`` gets a random one, which the caller shows once. An existing
    non-admin account with this email is not promoted: that raises Conflict.
    """
    with db.session() as s:
        admins = s.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN))
    if admins:
        return None
    used = password or secrets.token_urlsafe(12)
    create_user(db, email, used, Role.ADMIN)
    logger.info("Created the first admin account")
    return used
