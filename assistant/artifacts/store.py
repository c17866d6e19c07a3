"""The artifact store: index versions and model files shared between hosts through fsspec.

An artifact is a folder under the store's root, addressed by a key such as
``index/v000007`` or ``models/ft-job12``. Publishing uploads every file and then writes
``CHECKSUMS.json`` (each file's SHA-256 and size) last: an artifact without it is still
being written, or was abandoned, and no host takes it. Fetching downloads into a hidden
staging folder beside the destination, checks every file against ``CHECKSUMS.json`` and
renames the folder into place, so a host never serves a half-copied or corrupted file.

The store is any fsspec URL: a local or shared folder (``/srv/artifacts``,
``file:///srv/artifacts``), ``sftp://host/path`` (paramiko), ``s3://bucket/prefix`` or
``gs://...`` with their fsspec packages installed. Nothing here needs rename on the store
side, which object stores lack.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

logger = logging.getLogger(__name__)

CHECKSUMS = "CHECKSUMS.json"
CHUNK = 1 << 20


class ArtifactError(AssistantError):
    """An artifact is missing, incomplete, or its bytes do not match its checksums."""

    code = "artifact_unavailable"
    http_status = 503


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int


@dataclass(frozen=True)
class Artifact:
    """A complete artifact: its key and the digest of every file in it (relative paths)."""

    key: str
    files: dict[str, FileDigest]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())


class ArtifactStore:
    """Publishes local files and folders to an fsspec URL and fetches them back, verified."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        import fsspec

        self.url = url
        options = dict(options or {})
        if url.startswith(("sftp://", "ssh://")):
            from assistant.artifacts.ssh import pinned_options

            options = pinned_options(options)
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
            self.root = root.rstrip("/")
            self.fs.makedirs(self.root, exist_ok=True)
        except Exception as exc:
            # An unknown protocol, its package missing, bad options, an unreachable host, a
            # refused host key (paramiko's SSHException): the store's own errors, all of them.
            raise ArtifactError(f"cannot open the artifact store {url}: {exc}") from exc

    def _path(self, key: str, name: str = "") -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ArtifactError(f"not an artifact key: {key!r}")
        return "/".join(part for part in (self.root, key, name) if part)

    # ---- publishing ------------------------------------------------------------------------
    def publish(self, local: Path, key: str) -> Artifact:
        """Upload ``local`` (a file, or a folder with everything under it) as ``key``.

        Publishing a key that is already complete with the same files is a no-op, so a
        retried job never rewrites what hosts may be reading.
        """
        files = _local_files(local)
        digests = {name: file_digest(path) for name, path in files.items()}
        existing = self.describe(key)
        if existing is not None:
            if existing.files == digests:
                return existing
            raise ArtifactError(f"artifact {key} exists with other contents")
        for name, path in files.items():
            target = self._path(key, name)
            self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(str(path), target)
        # The checksums last: they mark the artifact complete.
        record = {name: {"sha256": d.sha256, "size": d.size} for name, d in digests.items()}
        with self.fs.open(self._path(key, CHECKSUMS), "w") as handle:
            handle.write(json.dumps(record, indent=1, sort_keys=True))
        logger.info("artifact %s published (%d files)", key, len(files))
        return Artifact(key, digests)

    # ---- reading ---------------------------------------------------------------------------
    def describe(self, key: str) -> Artifact | None:
        """The artifact's digests, or None when it is absent or not yet complete."""
        try:
            with self.fs.open(self._path(key, CHECKSUMS), "r") as handle:
                record = json.loads(handle.read())
        except FileNotFoundError:
            return None
        return Artifact(key, {name: FileDigest(**value) for name, value in record.items()})

    def fetch(self, key: str, destination: Path) -> Path:
        """The artifact as a local folder at ``destination``, verified; kept if already there.

        Concurrent fetches of the same key (two threads, two processes) each download into
        their own staging folder; the first rename wins and the other is discarded.
        """
        destination = Path(destination)
        if destination.is_dir():
            return destination
        artifact = self.describe(key)
        if artifact is None:
            raise ArtifactError(f"no complete artifact {key} in {self.url}")
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = destination.parent / f".{destination.name}-{uuid.uuid4().hex[:8]}"
        try:
            for name, wanted in artifact.files.items():
                self._download_verified(key, name, wanted, staging / name)
            _fsync_folder(staging)
            try:
                os.rename(staging, destination)
            except OSError:
                if not destination.is_dir():
                    raise
                shutil.rmtree(staging, ignore_errors=True)  # another fetch won the race
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("artifact %s fetched (%.1f MB)", key, artifact.size / 1e6)
        return destination

    def _download_verified(self, key: str, name: str, wanted: FileDigest, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        with self.fs.open(self._path(key, name), "rb") as source, target.open("wb") as sink:
            while block := source.read(CHUNK):
                digest.update(block)
                size += len(block)
                sink.write(block)
            sink.flush()
            os.fsync(sink.fileno())
        if (digest.hexdigest(), size) != (wanted.sha256, wanted.size):
            raise ArtifactError(f"artifact {key}: {name} does not match its checksum")

    def keys(self, prefix: str) -> list[str]:
        """Complete artifacts directly under ``prefix`` (e.g. ``index``), sorted."""
        try:
            entries = self.fs.ls(self._path(prefix), detail=False)
        except FileNotFoundError:
            return []
        names = sorted(str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries)
        return [f"{prefix}/{n}" for n in names if self.describe(f"{prefix}/{n}") is not None]

    def remove(self, key: str) -> None:
        """Delete an artifact: its checksums first, so no host starts fetching it meanwhile."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(key, CHECKSUMS))
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(key), recursive=True)


def _local_files(local: Path) -> dict[str, Path]:
    """Relative name -> path of every file to publish (a lone file keeps its own name)."""
    local = Path(local)
    if local.is_file():
        return {local.name: local}
    if not local.is_dir():
        raise ArtifactError(f"nothing to publish at {local}")
    return {
        path.relative_to(local).as_posix(): path
        for path in sorted(local.rglob("*"))
        if path.is_file() and path.name != CHECKSUMS
    }


def file_digest(path: Path) -> FileDigest:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            size += len(block)
    return FileDigest(digest.hexdigest(), size)


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entries (the files were synced as they were written)."""
    for path in [*sorted(p for p in folder.rglob("*") if p.is_dir()), folder]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
