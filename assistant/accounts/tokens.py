"""API tokens for programs (the OpenAI-compatible /v1 API): only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from assistant.accounts.users import normalize_email
from assistant.errors import InvalidInput, NotFound, Unauthorized
from assistant.infra import audit
from assistant.storage import models
from assistant.storage.db import Database

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "dat_"  # "domain assistant token": lets secret scanners and people spot one
MAX_NAME_CHARS = 100
# last_used_at is written at most this often per token (a write on every call is waste).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenInfo:
    id: int
    user_id: int
    name: str
    prefix: str
    role: models.Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: models.ApiToken, role: models.Role) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.user_id,
        row.name,
        row.prefix,
        role,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


def create_token(db: Database, email: str, name: str) -> tuple[str, TokenInfo]:
    """A new token for the active user ``email``; the token itself is returned only here."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"a token needs a name of 1 to {MAX_NAME_CHARS} characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.session() as session:
        user = session.scalars(
            select(models.User).where(models.User.email == normalize_email(email))
        ).first()
        if user is None or not user.is_active:
            raise NotFound(f"no active user {email!r}")
        row = models.ApiToken(
            user_id=user.id, name=name, token_hash=_digest(token), prefix=token[:12]
        )
        session.add(row)
        session.flush()
        audit.record(session, user.id, "token.create", target=f"api_token:{row.id}")
        logger.info("API token %s created for user %s", row.id, user.id)
        return token, _info(row, user.role)


def verify_token(db: Database, token: str) -> TokenInfo:
    """The token's owner and details; Unauthorized for an unknown, revoked or orphan token."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized("invalid API token")
    digest = _digest(token)
    with db.session() as session:
        found = session.execute(
            select(models.ApiToken, models.User)
            .join(models.User, models.User.id == models.ApiToken.user_id)
            .where(models.ApiToken.token_hash == digest)
        ).first()
        # compare_digest: the lookup is by digest already; this keeps the final check constant-time.
        if found is None or not hmac.compare_digest(found[0].token_hash, digest):
            raise Unauthorized("invalid API token")
        row, user = found
        if row.revoked_at is not None or not user.is_active:
            raise Unauthorized("this API token was revoked")
        now = models.utcnow()
        last = row.last_used_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=now.tzinfo)
        if last is None or now - last > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return _info(row, user.role)


def revoke_token(db: Database, token_id: int, actor_id: int | None = None) -> None:
    with db.session() as session:
        row = session.get(models.ApiToken, token_id)
        if row is None:
            raise NotFound(f"no API token {token_id}")
        if row.revoked_at is None:
            row.revoked_at = models.utcnow()
            audit.record(session, actor_id, "token.revoke", target=f"api_token:{row.id}")


def list_tokens(db: Database, user_id: int | None = None) -> list[TokenInfo]:
    with db.session() as session:
        query = select(models.ApiToken, models.User.role).join(
            models.User, models.User.id == models.ApiToken.user_id
        )
        if user_id is not None:
            query = query.where(models.ApiToken.user_id == user_id)
        rows = session.execute(query.order_by(models.ApiToken.id)).all()
        return [_info(row, role) for row, role in rows]
