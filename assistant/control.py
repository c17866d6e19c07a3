"""The control room's core: corpus uploads and re-index jobs, documents and their chunks,
feedback and quality figures, accounts and the audit log."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from assistant import audit, jobs
from assistant.errors import Conflict, InvalidInput, NotFound
from assistant.storage.models import (
    AuditEntry,
    Conversation,
    Document,
    Feedback,
    JobKind,
    Message,
    ModelVersion,
    Role,
    User,
    utcnow,
)
from retrieval.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from assistant.services import Services
    from retrieval.types import Chunk

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# One upload request (form or JSON) may carry a few files of up to MAX_UPLOAD_BYTES each.
MAX_UPLOAD_REQUEST = 4 * MAX_UPLOAD_BYTES
PAGE_SIZE = 50
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# ---- corpus -------------------------------------------------------------------------------
def uploads_dir(services: Services, collection: str) -> Path:
    return services.settings.data_dir / "uploads" / collection


def _check_collection(services: Services, collection: str) -> None:
    if collection not in services.settings.collections:
        known = ", ".join(services.settings.collections)
        raise InvalidInput(f"Unknown collection {collection!r} (known: {known}).")


def safe_filename(name: str) -> str:
    """A plain file name (no folders, no leading dots) with a supported suffix."""
    base = _SAFE_NAME.sub("_", Path(name.replace("\\", "/")).name).lstrip("._")[:150]
    suffix = Path(base).suffix.lower()
    if not base or suffix not in SUPPORTED_SUFFIXES:
        allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise InvalidInput(f"Upload a file of one of these types: {allowed}.")
    return base


def save_uploads(
    services: Services, collection: str, files: Sequence[tuple[str, IO[bytes]]]
) -> list[Path]:
    """Store uploaded corpus files under ``uploads/<collection>/``, all or none.

    Every name is checked before anything is written, and every file is written to a
    temporary name first: one bad file (type, size, empty) leaves no other file of the
    same upload behind. A same-named earlier upload is replaced.
    """
    _check_collection(services, collection)
    names = [safe_filename(name) for name, _ in files]
    # Two files of one upload under one name would both be written to the same temporary
    # file, and only one of them kept.
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidInput(f"Two files of this upload are both named {repeated[0]}.")
    folder = uploads_dir(services, collection)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[tuple[Path, Path]] = []
    try:
        for name, (_, stream) in zip(names, files, strict=True):
            partial = folder / f".{name}.part"
            written.append((partial, folder / name))
            _write_limited(partial, stream)
    except BaseException:
        for partial, _ in written:
            partial.unlink(missing_ok=True)
        raise
    for partial, target in written:
        partial.replace(target)
    return [target for _, target in written]


def _write_limited(path: Path, stream: IO[bytes]) -> None:
    size = 0
    with path.open("wb") as out:
        while block := stream.read(1024 * 1024):
            size += len(block)
            if size > MAX_UPLOAD_BYTES:
                raise InvalidInput(f"A file is limited to {MAX_UPLOAD_BYTES // 2**20} MiB.")
            out.write(block)
    if size == 0:
        raise InvalidInput("The file is empty.")


def start_ingest(
    services: Services,
    send: jobs.SendTask,
    collection: str,
    paths: list[Path],
    actor_id: int,
    reason: str,
) -> int:
    """Create an ingest job for ``paths`` and hand it to a worker; returns the job id."""
    _check_collection(services, collection)
    if not paths:
        raise InvalidInput(f"No uploaded files in {collection!r} to index.")
    params = {"paths": [str(p) for p in paths], "collection": collection, "reason": reason}
    job_id = jobs.enqueue(services.db, send, JobKind.INGEST, params, actor_id)
    with services.db.session() as s:
        audit.record(
            s,
            actor_id,
            f"corpus.{reason}",
            target=f"job:{job_id}",
            details={"collection": collection, "files": [p.name for p in paths][:50]},
        )
    logger.info("ingest job %d queued (%s, %d files)", job_id, collection, len(paths))
    return job_id


def uploaded_files(services: Services, collection: str) -> list[Path]:
    _check_collection(services, collection)
    folder = uploads_dir(services, collection)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    title: str
    collection: str
    source_url: str
    n_chunks: int
    updated_at: datetime | None


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentRow]
    total: int
    page: int
    pages: int


def list_documents(
    s: Session, collection: str | None = None, query: str | None = None, page: int = 1
) -> DocumentPage:
    """Documents by title, optionally one collection and a title/id substring."""
    where = []
    if collection:
        where.append(Document.collection == collection)
    if query:
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(Document.title.ilike(like, escape="\\"), Document.doc_id.ilike(like, escape="\\"))
        )
    total = s.scalar(select(func.count()).select_from(Document).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = s.scalars(
        select(Document)
        .where(*where)
        .order_by(Document.title, Document.id)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    documents = [
        DocumentRow(d.doc_id, d.title, d.collection, d.source_url, d.n_chunks, d.updated_at)
        for d in rows
    ]
    return DocumentPage(documents, total, page, pages)


def get_document(s: Session, doc_id: str) -> DocumentRow:
    d = s.scalar(select(Document).where(Document.doc_id == doc_id))
    if d is None:
        raise NotFound(f"No document {doc_id!r}.")
    return DocumentRow(d.doc_id, d.title, d.collection, d.source_url, d.n_chunks, d.updated_at)


def document_chunks(services: Services, doc_id: str) -> list[Chunk]:
    """The passages of one document in the index version in service, in document order."""
    from retrieval.store import current_version_name

    # Checked on disk first: services.index would load the embedding model just to say "none".
    if current_version_name(services.settings.index_dir) is None:
        return []
    chunks = [c for c in services.index.current().chunks if c.doc_id == doc_id]
    return sorted(chunks, key=lambda c: c.start)


# ---- feedback and quality ------------------------------------------------------------------
@dataclass(frozen=True)
class DayCounts:
    day: date
    questions: int
    thumbs_up: int
    thumbs_down: int
    flagged: int


@dataclass(frozen=True)
class VersionRate:
    """Thumbs on the answers of one model version (``None``: answers without a version)."""

    version: str
    thumbs_up: int
    thumbs_down: int

    @property
    def rate(self) -> float | None:
        total = self.thumbs_up + self.thumbs_down
        return self.thumbs_up / total if total else None


@dataclass(frozen=True)
class Quality:
    days: list[DayCounts]
    versions: list[VersionRate]
    flag_reasons: dict[str, int]


def _day(value: datetime | date | str | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def quality(s: Session, days: int = 14, today: date | None = None) -> Quality:
    """Counts per day over the last ``days`` days, thumbs-up rate per model version, flags."""
    end = today or utcnow().date()
    start = end - timedelta(days=days - 1)
    since = datetime.combine(start, datetime.min.time())
    per_day: dict[date, dict[str, int]] = {
        start + timedelta(days=i): {"questions": 0, "up": 0, "down": 0, "flagged": 0}
        for i in range(days)
    }

    def add(column: str, created: Any, n: int = 1) -> None:
        d = _day(created)
        if d in per_day:
            per_day[d][column] += n

    for created in s.scalars(
        select(Message.created_at).where(Message.role == "user", Message.created_at >= since)
    ):
        add("questions", created)
    for created in s.scalars(
        select(Message.created_at).where(Message.flagged.is_(True), Message.created_at >= since)
    ):
        add("flagged", created)
    for created, rating in s.execute(
        select(Feedback.created_at, Feedback.rating).where(Feedback.created_at >= since)
    ):
        add("up" if rating > 0 else "down", created)

    by_version: dict[str, list[int]] = {}
    for name, rating, n in s.execute(
        select(ModelVersion.name, Feedback.rating, func.count())
        .select_from(Feedback)
        .join(Message, Message.id == Feedback.message_id)
        .outerjoin(ModelVersion, ModelVersion.id == Message.model_version_id)
        .group_by(ModelVersion.name, Feedback.rating)
    ):
        counts = by_version.setdefault(name or "(no version recorded)", [0, 0])
        counts[0 if rating > 0 else 1] += n

    reasons: dict[str, int] = {}
    for flags in s.scalars(select(Message.flags).where(Message.flagged.is_(True))):
        for flag in set(flags or []):
            reasons[str(flag)] = reasons.get(str(flag), 0) + 1

    return Quality(
        days=[
            DayCounts(d, c["questions"], c["up"], c["down"], c["flagged"])
            for d, c in per_day.items()
        ],
        versions=[VersionRate(v, up, down) for v, (up, down) in sorted(by_version.items())],
        flag_reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


# ---- accounts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    is_active: bool
    created_at: datetime | None
    conversations: int


def list_accounts(s: Session) -> list[Account]:
    counts = dict(
        s.execute(select(Conversation.user_id, func.count()).group_by(Conversation.user_id)).all()
    )
    return [
        Account(u.id, u.email, u.role.value, u.is_active, u.created_at, counts.get(u.id, 0))
        for u in s.scalars(select(User).order_by(User.email))
    ]


def update_account(
    s: Session, actor_id: int, user_id: int, role: str | None, active: bool | None
) -> Account:
    """Change an account's role and/or whether it may sign in; the last active admin stays."""
    user = s.get(User, user_id)
    if user is None:
        raise NotFound(f"No account {user_id}.")
    new_role = user.role
    if role is not None:
        try:
            new_role = Role(role)
        except ValueError:
            raise InvalidInput(f"Unknown role {role!r}.") from None
    new_active = user.is_active if active is None else active
    if user.role == Role.ADMIN and user.is_active and (new_role != Role.ADMIN or not new_active):
        admins = s.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
        if (admins or 0) <= 1:
            raise Conflict("This is the last active admin: make another admin first.")
    changes: dict[str, Any] = {}
    if new_role != user.role:
        changes["role"] = [user.role.value, new_role.value]
        user.role = new_role
    if new_active != user.is_active:
        changes["active"] = [user.is_active, new_active]
        user.is_active = new_active
    if changes:
        # A new role or a disabled account: the sessions signed in under the old one end.
        user.session_version = (user.session_version or 0) + 1
        audit.record(s, actor_id, "user.update", target=f"user:{user.id}", details=changes)
    return Account(user.id, user.email, user.role.value, user.is_active, user.created_at, 0)


# ---- audit log -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditRow:
    id: int
    created_at: datetime | None
    actor: str
    action: str
    target: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditRow]
    actions: list[str]
    page: int
    pages: int
    total: int


def audit_log(s: Session, action: str | None = None, page: int = 1) -> AuditPage:
    """Newest first; ``action`` filters by an exact action or a prefix ending in a dot."""
    where = []
    if action:
        if action.endswith("."):
            where.append(AuditEntry.action.startswith(action, autoescape=True))
        else:
            where.append(AuditEntry.action == action)
    total = s.scalar(select(func.count()).select_from(AuditEntry).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = s.execute(
        select(AuditEntry, User.email)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(*where)
        .order_by(AuditEntry.id.desc())
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    ).all()
    actions = list(s.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))
    entries = [
        AuditRow(
            e.id,
            e.created_at,
            email or (f"user {e.actor_id}" if e.actor_id else "system"),
            e.action,
            e.target,
            dict(e.details or {}),
        )
        for e, email in rows
    ]
    return AuditPage(entries, actions, page, pages, total)
