"""The versioned on-disk index: chunks, their vectors, FAISS and BM25, swapped atomically.

Layout of ``index_dir``::

    CURRENT            name of the version in service (replaced with os.replace)
    v000007/           one complete, immutable version
        manifest.json  counts, model, collection ranges
        chunks.jsonl   one Chunk per line, in FAISS id order
        vectors.npy    the chunk embeddings (so updates never re-embed unchanged documents)
        titles.npy     one embedding per document title, in document order
        dense.faiss    FAISS index over vectors.npy
        bm25/          bm25s index over title + text

A writer builds a new version in a temporary folder, renames it into place, then points
CURRENT at it; a crash at any step leaves the previous version serving. Readers notice a
new CURRENT and reload without a restart.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from retrieval.answer_types import AnswerTypes
from retrieval.chunking import embedding_text
from retrieval.config import SearchParams
from retrieval.search import Searcher
from retrieval.types import Chunk, Hit, IndexMissing

if TYPE_CHECKING:
    from retrieval.embedding import Embedder

logger = logging.getLogger(__name__)

# Below this many chunks an exact (flat) index is fast enough and loses nothing.
HNSW_THRESHOLD = 200_000


@dataclass(frozen=True)
class Manifest:
    version: str
    created_at: float
    n_chunks: int
    n_documents: int
    dimension: int
    embedding_model: str
    collections: dict[str, list[int]]  # collection -> [first id, end id) in chunk order
    embedding_backend: str = "torch"
    has_vectors: bool = True  # False: a keyword-only version published while vectors are made


def current_version_name(index_dir: Path) -> str | None:
    """The version in service, read without loading anything (None before the first ingest)."""
    try:
        return (Path(index_dir) / "CURRENT").read_text().strip() or None
    except FileNotFoundError:
        return None


class IndexVersion:
    """One loaded, immutable version: chunks, vectors and the two indexes."""

    def __init__(self, path: Path) -> None:
        import faiss

        self.path = path
        self.manifest = Manifest(**json.loads((path / "manifest.json").read_text()))
        import bm25s

        with (path / "chunks.jsonl").open(encoding="utf-8") as handle:
            self.chunks = [_chunk_from_json(json.loads(line)) for line in handle]
        self.vectors: np.ndarray = np.zeros((0, self.manifest.dimension), dtype=np.float32)
        self.dense = None
        if self.manifest.has_vectors:
            # In memory below the HNSW size (at most ~300 MB): the passage step reads
            # vectors of whole documents, and page faults on a memory map cost more.
            large = self.manifest.n_chunks >= HNSW_THRESHOLD
            self.vectors = np.load(path / "vectors.npy", mmap_mode="r" if large else None)
            self.dense = faiss.read_index(str(path / "dense.faiss"))
        # Versions written before titles were embedded have no titles.npy: their passages
        # are then ranked by the plain similarity alone.
        titles = path / "titles.npy"
        self.title_vectors = (
            np.load(titles) if self.manifest.has_vectors and titles.is_file() else None
        )
        bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False)
        self.searcher = Searcher(
            self.chunks,
            self.vectors,
            self.dense,
            bm25,
            self.manifest.collections,
            self.title_vectors,
        )

    @property
    def name(self) -> str:
        return self.manifest.version


class IndexStore:
    """Reads the version in service and writes new ones."""

    def __init__(
        self,
        index_dir: Path,
        embedder: Embedder,
        params: SearchParams | None = None,
        answer_types: AnswerTypes | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.answer_types = answer_types
        self.index_dir.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.params = params or SearchParams()
        self._loaded: IndexVersion | None = None
        self._load_lock = threading.Lock()

    # ---- reading -------------------------------------------------------------------------
    def current_name(self) -> str | None:
        return current_version_name(self.index_dir)

    def exists(self) -> bool:
        return self.current_name() is not None

    def loaded_name(self) -> str | None:
        """The version this process holds in memory (None before the first search)."""
        loaded = self._loaded
        return loaded.name if loaded is not None else None

    def current(self) -> IndexVersion:
        """The version in service, reloaded when a writer has swapped in a newer one."""
        name = self.current_name()
        if name is None:
            raise IndexMissing(
                f"no index in {self.index_dir}; run `assistant ingest` on the corpus first"
            )
        loaded = self._loaded
        if loaded is None or loaded.name != name:
            with self._load_lock:
                if self._loaded is None or self._loaded.name != name:
                    started = time.perf_counter()
                    self._loaded = IndexVersion(self.index_dir / name)
                    logger.info(
                        "index version %s loaded in %.2fs (%d chunks)",
                        name,
                        time.perf_counter() - started,
                        self._loaded.manifest.n_chunks,
                    )
                    self._check_embedder(self._loaded.manifest)
                loaded = self._loaded
        return loaded

    def _check_embedder(self, manifest: Manifest) -> None:
        built_with = (Path(manifest.embedding_model).name, manifest.embedding_backend)
        serving = (self.embedder.model_path.name, self.embedder.backend)
        if built_with[0] != serving[0]:
            logger.error(
                "index version %s was built with %s but queries use %s: re-ingest the corpus",
                manifest.version,
                built_with[0],
                serving[0],
            )
        elif built_with[1] != serving[1]:
            # Same model, other runtime: vectors agree to cosine ~0.995, so search still
            # works; new passages are embedded with the current backend.
            logger.warning(
                "index version %s was embedded with the %s backend; queries use %s",
                manifest.version,
                built_with[1],
                serving[1],
            )

    def search(
        self,
        query: str,
        k: int,
        collection: str | None = None,
        candidates: int | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``, fused from vector and BM25 rankings.

        While the first ingestion is still embedding, the version in service has keywords
        only and every search is a BM25 search.
        """
        version = self.current()
        params = self.params
        if candidates:
            params = replace(params, candidates=candidates)
        needs_vector = version.manifest.has_vectors and mode != "bm25"
        vector = self.embedder.encode_query(query) if needs_vector else None
        return version.searcher.search(
            query,
            vector,
            k=k,
            collection=collection,
            mode=mode,
            params=params,
            answer_types=self.answer_types,
        )

    def unknown_words(self, query: str, exact: bool = False) -> list[str]:
        """The query's words the corpus does not know, even as misspellings (see Searcher)."""
        return self.current().searcher.unknown_words(query, exact)

    def has_phrase(self, phrase: str) -> bool:
        """Whether the corpus writes ``phrase`` somewhere (see Searcher.has_phrase)."""
        return self.current().searcher.has_phrase(phrase)

    # ---- writing -------------------------------------------------------------------------
    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """One writer at a time, across processes (the web app and workers)."""
        with (self.index_dir / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_version(
        self,
        keep_doc_ids: set[str] | None,
        new_chunks: list[Chunk],
        new_vectors: np.ndarray | None,
        n_documents: int,
    ) -> str:
        """Write a version made of the current one's chunks of ``keep_doc_ids`` plus new ones.

        ``keep_doc_ids=None`` keeps nothing of the current version (a full rebuild).
        ``new_vectors=None`` writes a keyword-only version (BM25 serves while the vectors
        are computed); the version after it must bring all vectors.
        Returns the new version's name. Call under ``writer_lock``.
        """
        old_chunks: list[Chunk] = []
        old_vectors = np.zeros((0, self.embedder.dimension), dtype=np.float32)
        if keep_doc_ids and self.exists():
            current = self.current()
            keep = [i for i, c in enumerate(current.chunks) if c.doc_id in keep_doc_ids]
            old_chunks = [current.chunks[i] for i in keep]
            if current.manifest.has_vectors:
                old_vectors = np.asarray(current.vectors[keep], dtype=np.float32)
            elif new_vectors is not None:
                # A keyword-only version left by an interrupted first ingest: the passages
                # kept from it have no vectors yet.
                old_vectors = self.embed_chunks(old_chunks)
        chunks = old_chunks + new_chunks
        vectors = None
        if new_vectors is not None:
            vectors = np.concatenate([old_vectors, new_vectors.astype(np.float32)], axis=0)
        # Chunks are stored grouped by collection so that a collection filter is an id range
        # (and a document's passages stay next to each other: a document is a range too).
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].collection, i))
        chunks = [chunks[i] for i in order]
        if vectors is not None and len(order):
            vectors = vectors[order]
        return self._write(chunks, vectors, n_documents)

    def _write(self, chunks: list[Chunk], vectors: np.ndarray | None, n_documents: int) -> str:
        import bm25s
        import faiss

        from retrieval.search import bm25_tokenize

        name = self._next_version_name()
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.index_dir))
        try:
            collections: dict[str, list[int]] = {}
            for i, chunk in enumerate(chunks):
                collections.setdefault(chunk.collection, [i, i + 1])[1] = i + 1
            with (staging / "chunks.jsonl").open("w", encoding="utf-8") as handle:
                for chunk in chunks:
                    handle.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
            if vectors is not None:
                np.save(staging / "vectors.npy", vectors)
                np.save(staging / "titles.npy", self._title_vectors(chunks))
                faiss.write_index(build_dense_index(vectors), str(staging / "dense.faiss"))
            bm25 = bm25s.BM25()
            bm25.index(bm25_tokenize([embedding_text(c) for c in chunks]), show_progress=False)
            bm25.save(str(staging / "bm25"), show_progress=False)
            manifest = Manifest(
                version=name,
                created_at=time.time(),
                n_chunks=len(chunks),
                n_documents=n_documents,
                dimension=int(vectors.shape[1]) if vectors is not None else self.embedder.dimension,
                embedding_model=str(self.embedder.model_path),
                collections=collections,
                embedding_backend=self.embedder.backend,
                has_vectors=vectors is not None,
            )
            (staging / "manifest.json").write_text(json.dumps(asdict(manifest), indent=1))
            _fsync_tree(staging)
            final = self.index_dir / name
            os.replace(staging, final)
            self._point_current_at(name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._prune(keep=2)
        logger.info("index version %s written: %d chunks", name, len(chunks))
        return name

    def version_path(self, name: str) -> Path:
        return self.index_dir / name

    def adopt_version(self, name: str) -> None:
        """Serve ``name``, a complete version another host built and this one copied into
        ``index_dir`` (readers swap to it as after a local write)."""
        if not (self.version_path(name) / "manifest.json").is_file():
            raise IndexMissing(f"index version {name} is not complete in {self.index_dir}")
        with self.writer_lock():
            self._point_current_at(name)
            self._prune(keep=2)
        logger.info("index version %s adopted", name)

    def _next_version_name(self) -> str:
        numbers = [int(p.name[1:]) for p in self.index_dir.glob("v[0-9]*") if p.name[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1:06d}"

    def _point_current_at(self, name: str) -> None:
        pointer = self.index_dir / "CURRENT.tmp"
        with pointer.open("w") as handle:
            handle.write(name)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(pointer, self.index_dir / "CURRENT")

    def _prune(self, keep: int) -> None:
        """Remove old versions (and abandoned staging folders), keeping the newest ``keep``."""
        current = self.current_name()
        versions = sorted(p for p in self.index_dir.glob("v[0-9]*") if p.is_dir())
        for path in versions[:-keep]:
            if path.name != current:
                shutil.rmtree(path, ignore_errors=True)
        for path in self.index_dir.glob(".v*-*"):
            if path.is_dir() and time.time() - path.stat().st_mtime > 3600:
                shutil.rmtree(path, ignore_errors=True)

    def _title_vectors(self, chunks: list[Chunk]) -> np.ndarray:
        """One vector per document title, in document order; titles the version in service
        already embedded are reused (with the same backend)."""
        titles = [
            c.title for i, c in enumerate(chunks) if i == 0 or c.doc_id != chunks[i - 1].doc_id
        ]
        known: dict[str, np.ndarray] = {}
        current = self.current() if self.exists() else None
        if (
            current is not None
            and current.title_vectors is not None
            and current.manifest.embedding_backend == self.embedder.backend
        ):
            starts = current.searcher.doc_start.tolist()
            known = {
                current.chunks[s].title: current.title_vectors[d] for d, s in enumerate(starts)
            }
        missing = sorted({t for t in titles if t not in known})
        known.update(zip(missing, self.embedder.encode(missing), strict=True))
        if not titles:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([np.asarray(known[t], dtype=np.float32) for t in titles])

    def embed_chunks(self, chunks: list[Chunk], show_progress: bool = False) -> np.ndarray:
        return self.embedder.encode([embedding_text(c) for c in chunks], show_progress)


def build_dense_index(vectors: np.ndarray):
    """Exact inner-product search below the threshold, HNSW above it."""
    import faiss

    dimension = int(vectors.shape[1]) if vectors.ndim == 2 and vectors.shape[1] else 384
    index: faiss.Index
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 128
    else:
        index = faiss.IndexFlatIP(dimension)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _chunk_from_json(record: dict[str, object]) -> Chunk:
    aliases = record.pop("aliases", ())  # JSON keeps the tuple as a list; older versions lack it
    # The record is a Chunk written by this module; its fields' types are not checked here.
    return Chunk(**record, aliases=tuple(aliases))  # type: ignore[arg-type]


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
