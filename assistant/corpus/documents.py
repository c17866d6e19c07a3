"""Browsing the corpus: the document registry page by page, one document and its chunks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from assistant.errors import NotFound
from assistant.storage.models import (
    Document,
)

if TYPE_CHECKING:
    from assistant.services import Services
    from retrieval.types import Chunk

logger = logging.getLogger(__name__)


PAGE_SIZE = 50


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    title: str
    collection: str
    source_url: str
    n_chunks: int
    updated_at: datetime | None


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentRow]
    total: int
    page: int
    pages: int


def list_documents(
    s: Session, collection: str | None = None, query: str | None = None, page: int = 1
) -> DocumentPage:
    """Documents by title, optionally one collection and a title/id substring."""
    where = []
    if collection:
        where.append(Document.collection == collection)
    if query:
        like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(Document.title.ilike(like, escape="\\"), Document.doc_id.ilike(like, escape="\\"))
        )
    total = s.scalar(select(func.count()).select_from(Document).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(1, page), pages)
    rows = s.scalars(
        select(Document)
        .where(*where)
        .order_by(Document.title, Document.id)
        .offset((page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    documents = [
        DocumentRow(d.doc_id, d.title, d.collection, d.source_url, d.n_chunks, d.updated_at)
        for d in rows
    ]
    return DocumentPage(documents, total, page, pages)


def get_document(s: Session, doc_id: str) -> DocumentRow:
    d = s.scalar(select(Document).where(Document.doc_id == doc_id))
    if d is None:
        raise NotFound(f"No document {doc_id!r}.")
    return DocumentRow(d.doc_id, d.title, d.collection, d.source_url, d.n_chunks, d.updated_at)


def document_chunks(services: Services, doc_id: str) -> list[Chunk]:
    """The passages of one document in the index version in service, in document order."""
    from retrieval.store import current_version_name

    # Checked on disk first: services.index would load the embedding model just to say "none".
    if current_version_name(services.settings.index_dir) is None:
        return []
    chunks = [c for c in services.index.current().chunks if c.doc_id == doc_id]
    return sorted(chunks, key=lambda c: c.start)
