"""How hosts share index versions and model versions through the artifact store.

Writers publish, then point: the worker that built an index version uploads it and then
moves the database pointer ``index`` to it; a model version is uploaded when it is
registered, before any gate or admin can promote it. Every host follows the pointers (the
index pointer, and the registry's active model) with an ``ArtifactFollower``: it fetches
what is missing into its own data folder, verified against the checksums, and swaps it in
without a restart. With no store configured (one machine) every method here does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.artifacts.store import ArtifactStore
from assistant.llm import registry
from assistant.llm.registry import ModelVersionInfo
from assistant.settings import Settings
from assistant.storage import models
from assistant.storage.db import Database
from assistant.storage.models import ModelKind

if TYPE_CHECKING:
    from retrieval.store import IndexStore

logger = logging.getLogger(__name__)

INDEX_POINTER = "index"
INDEX_WRITER_LEASE = "index-writer"
LEASE_TTL_S = 120.0


@dataclass(frozen=True)
class Pointer:
    version: str
    key: str


def read_pointer(db: Database, name: str) -> Pointer | None:
    with db.session() as session:
        row = session.get(models.ArtifactPointer, name)
        return Pointer(row.version, row.key) if row is not None else None


def set_pointer(db: Database, name: str, pointer: Pointer) -> None:
    with db.session() as session:
        row = session.get(models.ArtifactPointer, name, with_for_update=True)
        if row is None:
            session.add(models.ArtifactPointer(name=name, version=pointer.version, key=pointer.key))
        else:
            row.version, row.key = pointer.version, pointer.key


class ArtifactSharing:
    """Publishing and fetching for one process; inert when ``artifacts.url`` is empty."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._fetch_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.artifacts.enabled

    @cached_property
    def store(self) -> ArtifactStore:
        artifacts = self.settings.artifacts
        return ArtifactStore(artifacts.url, artifacts.options)

    # ---- index versions ----------------------------------------------------------------------
    def publish_index(self, index: IndexStore) -> Pointer | None:
        """Upload the version this host serves and point every host at it."""
        name = index.current_name()
        if not self.enabled or name is None:
            return None
        pointer = Pointer(name, f"index/{name}")
        self.store.publish(index.version_path(name), pointer.key)
        set_pointer(self.db, INDEX_POINTER, pointer)
        self._prune_index(pointer)
        return pointer

    def sync_index(self, index: IndexStore) -> bool:
        """Fetch and serve the pointed-at index version if it is newer than this host's."""
        if not self.enabled:
            return False
        pointer = read_pointer(self.db, INDEX_POINTER)
        local = index.current_name()
        # Names grow (v000007 < v000008): a host never goes back to an older version, e.g.
        # a worker that has just written one it has not published yet.
        if pointer is None or (local is not None and pointer.version <= local):
            return False
        with self._fetch_lock:
            self.store.fetch(pointer.key, index.version_path(pointer.version))
        index.adopt_version(pointer.version)
        return True

    @contextmanager
    def index_writer(self, index: IndexStore, wait_s: float = 1800.0) -> Iterator[None]:
        """The one writer of the index across every host: with a store, a database lease
        (waited for) and this host brought up to the shared version first, so the next
        version builds on it; after writing, the new version is published.
        """
        if not self.enabled:
            with index.writer_lock():
                yield
            return
        from assistant.infra.locks import Lease

        with Lease(self.db, INDEX_WRITER_LEASE, LEASE_TTL_S, wait_s=wait_s) as lease:
            self.sync_index(index)
            before = index.current_name()
            with index.writer_lock():
                yield
            lease.check()
            if index.current_name() != before:
                self.publish_index(index)

    def _prune_index(self, current: Pointer) -> None:
        """Drop old versions from the store, keeping the newest few: hosts swap within
        ``poll_s``, and one still on the previous version has its own local copy."""
        keep = self.settings.artifacts.keep_index_versions
        for key in self.store.keys("index")[:-keep]:
            if key != current.key:
                self.store.remove(key)

    # ---- uploaded corpus files ------------------------------------------------------------------
    def publish_upload(self, path: Path, collection: str) -> str:
        """Upload a corpus file saved on this (web) host for the worker that ingests it.
        The key carries the content digest: a re-upload under the same name is a new key."""
        from assistant.artifacts.store import file_digest

        key = f"uploads/{collection}/{path.name}-{file_digest(path).sha256[:16]}"
        self.store.publish(path, key)
        return key

    def fetch_upload(self, key: str) -> Path:
        """The uploaded file on this host (same name, so the same document id)."""
        if not key.startswith("uploads/"):
            raise ValueError(f"not an upload: {key}")
        folder = self.store.fetch(key, self.settings.artifact_cache_dir / key)
        return next(p for p in folder.iterdir() if p.is_file())

    # ---- datasets ----------------------------------------------------------------------------
    @staticmethod
    def dataset_key(version: int, content_hash: str) -> str:
        return f"datasets/v{version:04d}-{content_hash[:16]}"

    def publish_dataset(self, folder: Path, version: int, content_hash: str) -> None:
        """Upload a written dataset version before it is recorded, so that the worker that
        trains on it, or builds the next version from it, can be another machine."""
        if self.enabled:
            self.store.publish(folder, self.dataset_key(version, content_hash))

    def dataset_folder(self, folder: Path, version: int, content_hash: str) -> Path:
        """The dataset's folder on this host, fetched from the store if another made it."""
        if folder.is_dir() or not self.enabled:
            return folder
        key = self.dataset_key(version, content_hash)
        with self._fetch_lock:
            return self.store.fetch(key, self.settings.artifact_cache_dir / key)

    # ---- model versions ----------------------------------------------------------------------
    def publish_model(self, version: ModelVersionInfo) -> ModelVersionInfo:
        """Upload a merged version's file so any host can serve it. Base versions are the
        installed package's file, which every host has; runtime adapters stay local."""
        if not self.enabled or version.artifact_key or version.kind is not ModelKind.MERGED:
            return version
        if not version.serving_path.is_file():
            logger.warning("model version %s has no file here to publish", version.name)
            return version
        key = f"models/{version.name}"
        self.store.publish(version.serving_path, key)
        return registry.set_artifact_key(self.db, version.id, key)

    def remove_model(self, version: ModelVersionInfo) -> None:
        """Drop a pruned candidate's file from the store (never an active or retired one:
        those are what hosts serve, or may serve again after a rollback)."""
        if self.enabled and version.artifact_key and not version.is_active:
            self.store.remove(version.artifact_key)

    def publish_local_models(self) -> None:
        """Publish every version registered on this host and not yet shared."""
        if not self.enabled:
            return
        for version in registry.list_versions(self.db):
            self.publish_model(version)

    def model_file(self, version: ModelVersionInfo) -> Path:
        """The file to load for ``version`` on this host, fetched from the store if needed."""
        path = version.serving_path
        if not (self.enabled and version.artifact_key):
            return path
        folder = self.settings.artifact_cache_dir / version.artifact_key
        if (folder / path.name).is_file():
            return folder / path.name  # fetched and verified before
        if path.is_file() and self._matches(path, version.artifact_key):
            return path  # the host that made it, or a shared folder: nothing to copy
        with self._fetch_lock:
            self.store.fetch(version.artifact_key, folder)
        return folder / path.name

    def _matches(self, path: Path, key: str) -> bool:
        """Whether a local file is the published one (same name, size and SHA-256)."""
        from assistant.llm.default_model import file_sha256

        artifact = self.store.describe(key)
        wanted = artifact.files.get(path.name) if artifact is not None else None
        if wanted is None or path.stat().st_size != wanted.size:
            return False
        digests = self.settings.artifact_cache_dir / ".sha256"
        digests.mkdir(parents=True, exist_ok=True)
        return file_sha256(path, digests / f"{path.name}.json") == wanted.sha256

    def sync_active_model(self) -> None:
        """Fetch the active version ahead of the request that will load it (a host whose
        model runs on a model server needs no model file)."""
        if not self.enabled or self.settings.llm.backend == "remote":
            return
        active = registry.active_version(self.db)
        if active is not None:
            self.model_file(active)


class ArtifactFollower:
    """A daemon thread that keeps this host on the pointed-at index and model."""

    def __init__(
        self, sharing: ArtifactSharing, index: IndexStore | None, interval_s: float
    ) -> None:
        self.sharing = sharing
        self.index = index
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync_once(self) -> None:
        """One round; errors are logged and retried next round (a store or database that
        is briefly away must not stop the host from serving what it has)."""
        for step in (self._sync_index, self.sharing.sync_active_model):
            try:
                step()
            except Exception:
                logger.exception("artifact sync step %s failed; retrying", step.__name__)

    def _sync_index(self) -> None:
        if self.index is not None:
            self.sharing.sync_index(self.index)

    def start(self) -> None:
        if self._thread is not None or not self.sharing.enabled:
            return
        self._thread = threading.Thread(target=self._run, name="artifact-follower", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sync_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
