"""Plain data passed between the retrieval stages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """One source document, as loaded from a file."""

    doc_id: str
    title: str
    text: str
    collection: str
    source_url: str = ""
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # Other names of the document's subject ("Devic disease" for neuromyelitis optica):
    # search matches them as it matches the title.
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A passage of a document; ``text == document.text[start:end]``."""

    doc_id: str
    title: str
    collection: str
    source_url: str
    start: int
    end: int
    text: str
    aliases: tuple[str, ...] = ()  # the document's other names


@dataclass(frozen=True)
class Hit:
    """A chunk returned by a search, with its fused score and the dense similarity."""

    chunk: Chunk
    score: float
    dense_score: float
    rank: int


@dataclass(frozen=True)
class IngestReport:
    """What an ingestion did."""

    documents_added: int
    documents_replaced: int
    documents_unchanged: int
    chunks_added: int
    errors: tuple[str, ...] = ()
    duplicates_skipped: int = 0  # exact or near repeats of another document of the batch
    vectors_reused: int = 0  # passages whose vector an earlier version already had


class RetrievalError(Exception):
    """Base of the errors retrieval raises on purpose."""


class EmbeddingModelMissing(RetrievalError):
    """The configured embedding model folder does not exist or cannot be loaded."""


class IndexMissing(RetrievalError):
    """No index version has been written yet."""
