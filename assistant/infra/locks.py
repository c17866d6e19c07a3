"""Named leases in the database (the ``locks`` table): one training at a time, across
processes and worker restarts.

A holder renews its lease while it works (``Lease`` does it from a thread); a lease whose
``expires_at`` has passed belongs to nobody, so a worker killed mid-run blocks the next one
for at most one lease period.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from assistant.errors import Conflict
from assistant.storage import models
from assistant.storage.db import Database

logger = logging.getLogger(__name__)


class LockBusy(Conflict):
    """The lease is held by another live owner."""

    def __init__(self, name: str, owner: str, job_id: int | None, expires_at: datetime) -> None:
        super().__init__(f"{name} is held by {owner} (job {job_id}) until {expires_at:%H:%M:%S}")
        self.owner = owner
        self.job_id = job_id


class LeaseLost(Conflict):
    """Another owner took the lease over (ours expired): the work under it must stop."""


@dataclass(frozen=True)
class LockInfo:
    name: str
    owner: str
    job_id: int | None
    acquired_at: datetime
    expires_at: datetime


def new_owner() -> str:
    """An owner id unique to this process and call: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=models.utcnow().tzinfo)


def acquire(
    db: Database, name: str, owner: str, ttl_s: float, job_id: int | None = None
) -> LockInfo:
    """Take the lease, or take over an expired one; LockBusy while another holds it."""
    now = models.utcnow()
    expires = now + timedelta(seconds=ttl_s)
    with db.session() as session:
        row = session.get(models.Lock, name, with_for_update=True)
        if row is not None:
            if row.owner != owner and _aware(row.expires_at) > now:
                raise LockBusy(name, row.owner, row.job_id, _aware(row.expires_at))
            if row.owner != owner:
                logger.warning(
                    "lease %s of %s (job %s) expired; taken over", name, row.owner, row.job_id
                )
            row.owner, row.job_id = owner, job_id
            row.acquired_at, row.expires_at = now, expires
            return LockInfo(name, owner, job_id, now, expires)
    try:
        with db.session() as session:
            session.add(
                models.Lock(
                    name=name, owner=owner, job_id=job_id, acquired_at=now, expires_at=expires
                )
            )
    except IntegrityError:
        # Another process inserted it between our read and write: it holds the lease.
        current = holder(db, name)
        if current is None:
            raise
        raise LockBusy(name, current.owner, current.job_id, current.expires_at) from None
    return LockInfo(name, owner, job_id, now, expires)


def renew(db: Database, name: str, owner: str, ttl_s: float) -> bool:
    """Push the lease's expiry on; False when this owner no longer holds it."""
    with db.session() as session:
        result = session.execute(
            update(models.Lock)
            .where(models.Lock.name == name, models.Lock.owner == owner)
            .values(expires_at=models.utcnow() + timedelta(seconds=ttl_s))
        )
        # execute() is typed Result; an UPDATE returns a CursorResult
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(db: Database, name: str, owner: str) -> None:
    with db.session() as session:
        session.execute(
            delete(models.Lock).where(models.Lock.name == name, models.Lock.owner == owner)
        )


def holder(db: Database, name: str) -> LockInfo | None:
    """The live holder of ``name``, or None (free or expired)."""
    with db.session() as session:
        row = session.get(models.Lock, name)
        if row is None or _aware(row.expires_at) <= models.utcnow():
            return None
        return LockInfo(
            row.name, row.owner, row.job_id, _aware(row.acquired_at), _aware(row.expires_at)
        )


class Lease:
    """``with Lease(db, "training", ttl_s=120, job_id=7):`` holds and renews the lease.

    A daemon thread renews it every third of the period, so long steps (an export, an
    evaluation) keep it; if the process dies, renewals stop and the lease expires.
    """

    def __init__(
        self,
        db: Database,
        name: str,
        ttl_s: float,
        job_id: int | None = None,
        wait_s: float = 0.0,
    ) -> None:
        """``wait_s``: how long to wait for a held lease (checked every second) before
        raising LockBusy; 0 raises at once."""
        self.db, self.name, self.ttl_s, self.job_id = db, name, ttl_s, job_id
        self.wait_s = wait_s
        self.owner = new_owner()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Lease:
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                acquire(self.db, self.name, self.owner, self.ttl_s, self.job_id)
                break
            except LockBusy:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        self._thread = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
        self._thread.start()
        return self

    def check(self) -> None:
        """Raise LeaseLost once the lease has been taken over; call it between work steps,
        so that a run whose lease expired (a paused or partitioned worker) writes nothing."""
        if self.lost.is_set():
            raise LeaseLost(f"the {self.name} lease was taken over by another worker")

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                if not renew(self.db, self.name, self.owner, self.ttl_s):
                    logger.error("lease %s was lost (taken over)", self.name)
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: try again next period
                logger.exception("could not renew lease %s", self.name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        release(self.db, self.name, self.owner)
