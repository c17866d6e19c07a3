"""Corpus uploads: files saved safely into a collection, and the re-index job that ingests them."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from assistant.errors import InvalidInput
from assistant.infra import audit, jobs
from assistant.storage.models import (
    JobKind,
)
from retrieval.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from assistant.services import Services

logger = logging.getLogger(__name__)


MAX_UPLOAD_BYTES = 50 * 1024 * 1024


# One upload request (form or JSON) may carry a few files of up to MAX_UPLOAD_BYTES each.
MAX_UPLOAD_REQUEST = 4 * MAX_UPLOAD_BYTES


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
    params: dict[str, Any] = {
        "paths": [str(p) for p in paths],
        "collection": collection,
        "reason": reason,
    }
    if services.settings.artifacts.enabled:
        # The worker that ingests may be another machine: it fetches the files from the
        # store (published before the job exists, so it never waits for them).
        params["artifacts"] = [services.artifacts.publish_upload(p, collection) for p in paths]
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
