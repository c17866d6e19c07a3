"""Corpus management: ingest files into the index and keep the document registry in step."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from assistant.errors import InvalidInput
from assistant.storage import models
from retrieval.ingest import (
    CHUNKER_VERSION,
    PreparedDocument,
    chunk_documents,
    clean_documents,
    embed_in_batches,
    reusable_vectors,
)
from retrieval.loaders import LoadError, load_paths
from retrieval.types import Document, IngestReport

if TYPE_CHECKING:
    from assistant.services import Services

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


def ingest_paths(
    services: Services,
    paths: list[Path],
    collection: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every readable file; unreadable files and records are reported, not fatal."""
    known = services.settings.collections
    if collection is not None and collection not in known:
        raise InvalidInput(f"unknown collection {collection!r} (known: {', '.join(known)})")
    documents: list[Document] = []
    errors: list[str] = []
    for item in load_paths(paths, collection, known):
        if isinstance(item, LoadError):
            errors.append(str(item))
        elif item.collection not in known:
            errors.append(
                f"{item.doc_id}: unknown collection {item.collection!r} (known: "
                f"{', '.join(known)}); pass one, or put the file in a folder named after one"
            )
        else:
            documents.append(item)
    for error in errors:
        logger.warning("not ingested: %s", error)
    return ingest_documents(services, documents, errors, progress)


def ingest_documents(
    services: Services,
    documents: list[Document],
    errors: list[str] | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Add new and changed documents to a new index version; unchanged ones cost nothing."""
    store = services.index
    settings = services.settings.retrieval
    report_errors = tuple(errors or ())
    with services.artifacts.index_writer(store):
        known = _registered_hashes(services)
        budget = min(settings.chunk_tokens, store.embedder.max_tokens - 2)
        chunking = f"{CHUNKER_VERSION}:{budget}:{settings.chunk_overlap_sentences}"
        cleaned = clean_documents(documents, chunking)
        duplicates = len(documents) - len(cleaned)
        to_index = [(d, digest) for d, digest in cleaned if known.get(d.doc_id) != digest]
        unchanged = len(cleaned) - len(to_index)
        if not to_index:  # nothing new (or nothing readable): no version to write
            return IngestReport(0, 0, unchanged, 0, report_errors, duplicates)
        changed = chunk_documents(
            to_index,
            store.embedder.count_tokens,
            budget,
            settings.chunk_overlap_sentences,
        )
        replaced = sum(1 for p in changed if p.document.doc_id in known)

        new_chunks = [chunk for p in changed for chunk in p.chunks]
        changed_ids = {p.document.doc_id for p in changed}
        if not store.exists():
            # First ingestion: publish the passages with keywords only at once, so search
            # works (BM25) during the minutes the vectors take.
            store.write_version(None, new_chunks, None, n_documents=len(changed_ids))
            if progress:
                progress(0.0, "keyword search is ready; embedding passages")
        reused = reusable_vectors(store, new_chunks)
        logger.info(
            "embedding %d passages of %d documents (%d vectors reused)",
            len(new_chunks) - len(reused),
            len(changed),
            len(reused),
        )
        vectors = embed_in_batches(store, new_chunks, progress, reused)
        indexed_ids = {c.doc_id for c in store.current().chunks} if store.exists() else set()
        keep = indexed_ids - changed_ids
        store.write_version(keep, new_chunks, vectors, n_documents=len(keep | changed_ids))

        # The registry is written after the index: a crash in between only means the
        # same documents are embedded again next time, never a registry that lies.
        _register_documents(services, changed)
    return IngestReport(
        documents_added=len(changed) - replaced,
        documents_replaced=replaced,
        documents_unchanged=unchanged,
        chunks_added=len(new_chunks),
        errors=report_errors,
        duplicates_skipped=duplicates,
        vectors_reused=len(reused),
    )


def _registered_hashes(services: Services) -> dict[str, str]:
    """doc_id -> content hash of every document the registry holds."""
    with services.db.session() as session:
        return dict(
            session.execute(select(models.Document.doc_id, models.Document.content_hash)).all()
        )


def _register_documents(services: Services, changed: list[PreparedDocument]) -> None:
    """Insert or update the registry rows of the documents just indexed."""
    changed_ids = [p.document.doc_id for p in changed]
    with services.db.session() as session:
        rows = {
            row.doc_id: row
            for row in session.scalars(
                select(models.Document).where(models.Document.doc_id.in_(changed_ids))
            )
        }
        for p in changed:
            row = rows.get(p.document.doc_id) or models.Document(doc_id=p.document.doc_id)
            row.collection = p.document.collection
            row.title = p.document.title[:500]
            row.source_url = p.document.source_url[:2000]
            row.text = p.document.text
            row.content_hash = p.content_hash
            row.n_chunks = len(p.chunks)
            session.add(row)


def delete_documents(services: Services, doc_ids: list[str]) -> int:
    """Remove documents from the index and the registry; returns how many were known."""
    store = services.index
    with services.artifacts.index_writer(store):
        if store.exists():
            current = store.current()
            indexed = {c.doc_id for c in current.chunks}
            targets = indexed & set(doc_ids)
            if targets:
                keep = indexed - targets
                store.write_version(keep, [], store.embedder.encode([]), n_documents=len(keep))
        with services.db.session() as session:
            result = session.execute(
                delete(models.Document).where(models.Document.doc_id.in_(doc_ids))
            )
            # execute() is typed Result; a DELETE returns a CursorResult
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def default_corpus_paths(services: Services) -> list[Path]:
    root = services.settings.corpus_dir
    return [root / name for name in services.settings.collections if (root / name).is_dir()]
