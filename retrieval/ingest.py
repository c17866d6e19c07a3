"""Turn documents into an index version: clean, de-duplicate, chunk, embed, write."""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from retrieval.chunking import TokenCounter, chunk_document, embedding_text
from retrieval.types import Chunk, Document

if TYPE_CHECKING:
    from retrieval.store import IndexStore

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]

EMBED_BATCH = 256  # chunks per progress step


def clean_text(text: str) -> str:
    """Normalise what a loader produced; offsets are taken on the cleaned text."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip()


# Part of every document's hash: a change to how documents are chunked re-chunks them all on
# the next ingest (their unchanged passages keep their vectors).
CHUNKER_VERSION = "2"


def content_hash(document: Document, chunking: str = "") -> str:
    payload = "\x1f".join(
        [document.title, document.collection, document.source_url, document.text, chunking]
        + (["\x1e".join(document.aliases)] if document.aliases else [])
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PreparedDocument:
    document: Document
    content_hash: str
    chunks: tuple[Chunk, ...]


def clean_documents(documents: list[Document], chunking: str = "") -> list[tuple[Document, str]]:
    """Cleaned documents with their content hash; exact and near repeats of earlier ones dropped."""
    seen_texts: set[str] = set()
    cleaned: list[Document] = []
    for document in documents:
        document = replace(document, text=clean_text(document.text))
        text_key = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        if not document.text or text_key in seen_texts:
            continue
        seen_texts.add(text_key)
        cleaned.append(document)
    repeats = near_duplicates(cleaned)
    if repeats:
        logger.info("%d near-duplicate documents skipped", len(repeats))
    return [
        (document, content_hash(document, chunking))
        for position, document in enumerate(cleaned)
        if position not in repeats
    ]


# Near duplicates: the same text up to whitespace, punctuation, case or small edits. Two
# pages about different things can share most of their words (MedQuAD's "Bardet-Biedl
# syndrome 6" and "... 7" overlap 0.94), so a lower bar needs the same title as well.
NEAR_DUPLICATE_SAME_TITLE = 0.9
NEAR_DUPLICATE_ANY_TITLE = 0.97
_SHINGLE = 5
_BANDS, _ROWS = 8, 4  # MinHash banding: pairs at Jaccard 0.9 meet in a band with p > 0.99
_WORDS = re.compile(r"\w+")


def shingles(text: str) -> np.ndarray:
    """Hashes of the text's word 5-grams (lower case), as a sorted unique uint64 array.

    Python's string hash is salted per process: compare shingles within one process only.
    """
    words = _WORDS.findall(text.lower())
    ids = np.array(list(map(hash, words)), dtype=np.int64).view(np.uint64)
    if len(ids) < _SHINGLE:
        return np.unique(ids * np.uint64(0x9E3779B97F4A7C15))
    mixed = np.zeros(len(ids) - _SHINGLE + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(_SHINGLE):
            mixed = mixed * np.uint64(1_000_003) + ids[offset : offset + len(mixed)]
    return np.unique(mixed)


def near_duplicates(documents: list[Document]) -> set[int]:
    """Positions of documents that nearly repeat an earlier one (word 5-gram Jaccard)."""
    sets = [shingles(d.text) for d in documents]
    rng = np.random.default_rng(20261123)
    a = rng.integers(0, 1 << 62, _BANDS * _ROWS, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 1 << 62, _BANDS * _ROWS, dtype=np.uint64)
    empty = np.full(_BANDS * _ROWS, np.iinfo(np.uint64).max, dtype=np.uint64)
    signatures = []
    buckets: dict[tuple[int, bytes], list[int]] = {}
    candidates: set[tuple[int, int]] = set()
    for position, values in enumerate(sets):
        signature = empty
        if len(values):
            with np.errstate(over="ignore"):
                # odd a: x -> a*x + b (mod 2^64) is a permutation of the hashes.
                signature = (values[:, None] * a + b).min(axis=0)
        signatures.append(signature)
        for band in range(_BANDS):
            key = (band, signature[band * _ROWS : (band + 1) * _ROWS].tobytes())
            for earlier in buckets.setdefault(key, []):
                candidates.add((earlier, position))
            buckets[key].append(position)
    repeats: set[int] = set()
    for earlier, later in sorted(candidates):
        if earlier in repeats or later in repeats:
            continue
        # Templated pages share bands often; the share of equal MinHash values estimates
        # the Jaccard (sd ~0.05 at 0.9), so most pairs are dismissed before the exact count.
        if np.mean(signatures[earlier] == signatures[later]) < NEAR_DUPLICATE_SAME_TITLE - 0.2:
            continue
        shared = len(np.intersect1d(sets[earlier], sets[later], assume_unique=True))
        jaccard = shared / (len(sets[earlier]) + len(sets[later]) - shared)
        same_title = documents[earlier].title.casefold() == documents[later].title.casefold()
        bar = NEAR_DUPLICATE_SAME_TITLE if same_title else NEAR_DUPLICATE_ANY_TITLE
        if jaccard >= bar:
            repeats.add(later)
    return repeats


def chunk_documents(
    documents: list[tuple[Document, str]], count_tokens: TokenCounter, budget: int, overlap: int
) -> list[PreparedDocument]:
    return [
        PreparedDocument(
            document, digest, tuple(chunk_document(document, count_tokens, budget, overlap))
        )
        for document, digest in documents
    ]


def reusable_vectors(store: IndexStore, chunks: list[Chunk]) -> dict[int, np.ndarray]:
    """Vectors the version in service already has for identical passages (same text and title).

    A re-chunked or edited document then costs only its new passages.
    """
    if not store.exists():
        return {}
    current = store.current()
    if not current.manifest.has_vectors or current.manifest.embedding_backend != (
        store.embedder.backend
    ):
        return {}
    known = {embedding_text(c): i for i, c in enumerate(current.chunks)}
    found = {}
    for position, chunk in enumerate(chunks):
        row = known.get(embedding_text(chunk))
        if row is not None:
            found[position] = np.asarray(current.vectors[row], dtype=np.float32)
    return found


def embed_in_batches(
    store: IndexStore,
    chunks: list[Chunk],
    progress: ProgressCallback | None,
    reused: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Embeddings of all chunks (``reused`` rows taken as given), with progress between batches.

    Passages are sent longest first, so each model batch pads to similar lengths.
    """
    reused = reused or {}
    vectors = np.zeros((len(chunks), store.embedder.dimension), dtype=np.float32)
    for position, vector in reused.items():
        vectors[position] = vector
    todo = sorted(
        (i for i in range(len(chunks)) if i not in reused), key=lambda i: -len(chunks[i].text)
    )
    for start in range(0, len(todo), EMBED_BATCH):
        batch = todo[start : start + EMBED_BATCH]
        vectors[batch] = store.embed_chunks([chunks[i] for i in batch])
        if progress:
            done = min(start + EMBED_BATCH, len(todo))
            progress(done / max(1, len(todo)), f"embedded {done}/{len(todo)} passages")
    return vectors
