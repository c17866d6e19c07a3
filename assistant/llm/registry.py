"""The model registry: servable model versions and the one active pointer.

Serving follows the active row (every web and worker process checks it), so activating or
rolling back takes effect for new requests without a restart. The learning loop registers
candidates here and promotes them only after the evaluation gate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assistant.errors import Conflict, InvalidInput, NotFound
from assistant.infra import audit
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import ModelKind, ModelState

logger = logging.getLogger(__name__)

BASE_VERSION_NAME = "base"


@dataclass(frozen=True)
class ModelVersionInfo:
    """What serving needs to load a version, and what the admin pages show of it."""

    id: int
    name: str
    kind: ModelKind
    state: ModelState
    base_path: Path
    adapter_path: Path | None
    artifact_key: str | None
    metrics: dict[str, Any]
    dataset_id: int | None
    parent_id: int | None
    created_at: datetime
    activated_at: datetime | None

    @property
    def serving_path(self) -> Path:
        """The GGUF file llama.cpp loads (a merged model is its own base)."""
        return self.base_path

    @property
    def is_active(self) -> bool:
        return self.state is ModelState.ACTIVE


def _info(row: models.ModelVersion) -> ModelVersionInfo:
    return ModelVersionInfo(
        id=row.id,
        name=row.name,
        kind=ModelKind(row.kind),
        state=ModelState(row.state),
        base_path=Path(row.base_path),
        adapter_path=Path(row.adapter_path) if row.adapter_path else None,
        artifact_key=row.artifact_key,
        metrics=dict(row.metrics or {}),
        dataset_id=row.dataset_id,
        parent_id=row.parent_id,
        created_at=row.created_at,
        activated_at=row.activated_at,
    )


def list_versions(db: Database) -> list[ModelVersionInfo]:
    """Every version, newest first."""
    with db.session() as session:
        rows = session.scalars(select(models.ModelVersion).order_by(models.ModelVersion.id.desc()))
        return [_info(row) for row in rows]


def get_version(db: Database, version_id: int) -> ModelVersionInfo:
    with db.session() as session:
        row = session.get(models.ModelVersion, version_id)
        if row is None:
            raise NotFound(f"no model version {version_id}")
        return _info(row)


def active_version(db: Database) -> ModelVersionInfo | None:
    with db.session() as session:
        row = session.scalars(
            select(models.ModelVersion).where(models.ModelVersion.is_active).limit(1)
        ).first()
        return _info(row) if row is not None else None


def ensure_base_version(db: Database, base_path: Path) -> ModelVersionInfo:
    """The configured GGUF as a registered base version, active when nothing is, or when what
    serves grew from another base file (the operator changed the configured model).

    A model trained from the old base stays registered (a rollback target); versions whose
    lineage is unknown (no base among their parents) are left serving.
    """
    configured = Path(base_path).resolve()
    with db.session() as session:
        active = session.scalars(
            select(models.ModelVersion).where(models.ModelVersion.is_active).limit(1)
        ).first()
        if active is not None:
            root = _root(session, active)
            if root.kind != ModelKind.BASE or Path(root.base_path).resolve() == configured:
                return _info(active)
        bases = session.scalars(
            select(models.ModelVersion).where(models.ModelVersion.kind == ModelKind.BASE)
        ).all()
        row = next((b for b in bases if Path(b.base_path).resolve() == configured), None)
        if row is None:
            taken = set(session.scalars(select(models.ModelVersion.name)))
            name, n = BASE_VERSION_NAME, 1
            while name in taken:
                n += 1
                name = f"{BASE_VERSION_NAME}-{n}"
            row = models.ModelVersion(name=name, kind=ModelKind.BASE, base_path=str(configured))
            session.add(row)
            session.flush()
        if active is not None:
            logger.warning(
                "the configured model %s differs from the base of %s: serving %s now",
                configured,
                active.name,
                row.name,
            )
        _make_active(session, row)
        session.flush()
        return _info(row)


def _root(session: Session, row: models.ModelVersion) -> models.ModelVersion:
    """The version a lineage started from: parents followed up to a base (or the oldest)."""
    seen = {row.id}
    while row.kind != ModelKind.BASE and row.parent_id is not None:
        parent = session.get(models.ModelVersion, row.parent_id)
        if parent is None or parent.id in seen:
            break
        seen.add(parent.id)
        row = parent
    return row


def register_version(
    db: Database,
    name: str,
    *,
    kind: ModelKind,
    base_path: Path,
    adapter_path: Path | None = None,
    metrics: dict[str, Any] | None = None,
    dataset_id: int | None = None,
    parent_id: int | None = None,
    notes: str = "",
) -> ModelVersionInfo:
    """Add a candidate. Its files must already be complete on disk (written, then renamed)."""
    if kind is ModelKind.ADAPTER and adapter_path is None:
        raise InvalidInput("an adapter version needs its adapter file")
    for path in (base_path, adapter_path):
        if path is not None and not Path(path).is_file():
            raise InvalidInput(f"model file missing: {path}")
    with db.session() as session:
        taken = session.scalars(
            select(models.ModelVersion.id).where(models.ModelVersion.name == name)
        ).first()
        if taken is not None:
            raise Conflict(f"a model version named {name!r} exists")
        row = models.ModelVersion(
            name=name,
            kind=kind,
            state=ModelState.CANDIDATE,
            base_path=str(base_path),
            adapter_path=str(adapter_path) if adapter_path else None,
            metrics=dict(metrics or {}),
            dataset_id=dataset_id,
            parent_id=parent_id,
            notes=notes,
        )
        session.add(row)
        session.flush()
        return _info(row)


def activate_version(
    db: Database, version_id: int, actor_id: int | None = None, reason: str = "promote"
) -> ModelVersionInfo:
    """Make ``version_id`` the one serving new requests; the previous one is retired."""
    with db.session() as session:
        row = session.get(models.ModelVersion, version_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no model version {version_id}")
        if row.state is ModelState.REJECTED:
            raise Conflict(f"model version {row.name!r} was rejected by the evaluation gate")
        # A version in the artifact store is fetched by each host that serves it; one that is
        # not must be here (one machine, or a shared folder).
        for path in (row.base_path, row.adapter_path) if row.artifact_key is None else ():
            if path and not Path(path).is_file():
                raise Conflict(f"model file missing for {row.name!r}: {path}")
        previous = session.scalars(
            select(models.ModelVersion.id).where(models.ModelVersion.is_active)
        ).first()
        _make_active(session, row)
        audit.record(
            session,
            actor_id,
            f"model.{reason}",
            target=f"model_version:{row.id}",
            details={"previous": previous, "name": row.name},
        )
        session.flush()
        logger.info("model version %s (%s) active (was %s)", row.id, row.name, previous)
        return _info(row)


def set_artifact_key(db: Database, version_id: int, key: str) -> ModelVersionInfo:
    """Record where a version's files were published for the other hosts."""
    with db.session() as session:
        row = session.get(models.ModelVersion, version_id)
        if row is None:
            raise NotFound(f"no model version {version_id}")
        row.artifact_key = key
        session.flush()
        return _info(row)


def reject_version(db: Database, version_id: int, metrics: dict[str, Any] | None = None) -> None:
    """Mark a candidate that failed the gate; it can never be activated."""
    with db.session() as session:
        row = session.get(models.ModelVersion, version_id)
        if row is None:
            raise NotFound(f"no model version {version_id}")
        if row.is_active:
            raise Conflict("the active model cannot be rejected; roll back first")
        row.state = ModelState.REJECTED
        if metrics:
            row.metrics = {**(row.metrics or {}), **metrics}


def forget_version(db: Database, version_id: int) -> None:
    """Remove a version's row (never its files: they may be another version's too); the
    active version cannot be forgotten. Benchmarks use it to leave the registry as found."""
    with db.session() as session:
        row = session.get(models.ModelVersion, version_id)
        if row is None:
            return
        if row.is_active:
            raise Conflict("the active model version cannot be forgotten; roll back first")
        session.execute(
            update(models.ModelVersion)
            .where(models.ModelVersion.parent_id == version_id)
            .values(parent_id=row.parent_id)
        )
        session.delete(row)


def rollback(db: Database, actor_id: int | None = None) -> ModelVersionInfo:
    """Re-activate the version that was active before the current one."""
    with db.session() as session:
        current = session.scalars(
            select(models.ModelVersion).where(models.ModelVersion.is_active)
        ).first()
        previous = session.scalars(
            select(models.ModelVersion)
            .where(
                models.ModelVersion.state == ModelState.RETIRED,
                models.ModelVersion.activated_at.is_not(None),
            )
            .order_by(models.ModelVersion.activated_at.desc())
            .limit(1)
        ).first()
        if previous is None:
            raise Conflict("no earlier model version to roll back to")
        previous_id = previous.id
    logger.info("rolling back from %s", current.id if current else None)
    return activate_version(db, previous_id, actor_id, reason="rollback")


def _make_active(session: Session, row: models.ModelVersion) -> None:
    session.execute(
        update(models.ModelVersion)
        .where(models.ModelVersion.is_active, models.ModelVersion.id != row.id)
        .values(is_active=False, state=ModelState.RETIRED)
    )
    row.is_active = True
    row.state = ModelState.ACTIVE
    row.activated_at = models.utcnow()
