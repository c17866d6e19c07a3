"""Turn documents into an index version: clean, de-duplicate, chunk, embed, write."""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from retrieval.chunking import TokenCounter, chunk_document
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


def content_hash(document: Document) -> str:
    payload = "\x1f".join([document.title, document.collection, document.source_url, document.text])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PreparedDocument:
    document: Document
    content_hash: str
    chunks: tuple[Chunk, ...]


def clean_documents(documents: list[Document]) -> list[tuple[Document, str]]:
    """Cleaned documents with their content hash; exact repeats of an earlier text dropped."""
    seen_texts: set[str] = set()
    cleaned = []
    for document in documents:
        document = replace(document, text=clean_text(document.text))
        text_key = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        if not document.text or text_key in seen_texts:
            continue
        seen_texts.add(text_key)
        cleaned.append((document, content_hash(document)))
    return cleaned


def chunk_documents(
    documents: list[tuple[Document, str]], count_tokens: TokenCounter, budget: int, overlap: int
) -> list[PreparedDocument]:
    return [
        PreparedDocument(
            document, digest, tuple(chunk_document(document, count_tokens, budget, overlap))
        )
        for document, digest in documents
    ]


def embed_in_batches(
    store: IndexStore, chunks: list[Chunk], progress: ProgressCallback | None
) -> np.ndarray:
    """Embeddings of all chunks, reporting progress between batches."""
    parts = []
    for start in range(0, len(chunks), EMBED_BATCH):
        parts.append(store.embed_chunks(chunks[start : start + EMBED_BATCH]))
        if progress:
            done = min(start + EMBED_BATCH, len(chunks))
            progress(done / max(1, len(chunks)), f"embedded {done}/{len(chunks)} passages")
    if not parts:
        return np.zeros((0, store.embedder.dimension), dtype=np.float32)
    return np.concatenate(parts, axis=0)
