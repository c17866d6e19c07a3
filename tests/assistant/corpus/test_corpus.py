"""Ingestion through the product: registry, idempotency, replacement, deletion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from assistant.corpus.ingest import delete_documents, ingest_paths
from assistant.errors import InvalidInput
from assistant.services import Services
from assistant.settings import RetrievalSettings
from assistant.storage import models
from retrieval.chunking import chunk_document, embedding_text
from tests.conftest import fixture_documents

pytestmark = pytest.mark.slow


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


RECORDS = [
    {
        "id": "t:1",
        "title": "Sunburn",
        "text": "Sunburn is skin damage from ultraviolet light. "
        "Cool compresses and aloe help the skin recover.",
    },
    {
        "id": "t:2",
        "title": "Tenancy deposits",
        "text": "A landlord must return the security "
        "deposit within thirty days after the tenant moves out.",
    },
]


def test_ingest_is_idempotent_and_registers_documents(fresh_services, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", RECORDS)
    first = ingest_paths(fresh_services, [path], "medical")
    assert (first.documents_added, first.chunks_added) == (2, 2)
    version = fresh_services.index.current_name()
    again = ingest_paths(fresh_services, [path], "medical")
    assert (again.documents_added, again.documents_unchanged, again.chunks_added) == (0, 2, 0)
    assert fresh_services.index.current_name() == version  # no new version for nothing
    with fresh_services.db.session() as session:
        rows = session.scalars(select(models.Document).order_by(models.Document.doc_id)).all()
        assert [(r.doc_id, r.n_chunks, r.collection) for r in rows] == [
            ("t:1", 1, "medical"),
            ("t:2", 1, "medical"),
        ]


def test_a_changed_document_replaces_its_passages(fresh_services, tmp_path: Path) -> None:
    ingest_paths(fresh_services, [write_jsonl(tmp_path / "a.jsonl", RECORDS)], "medical")
    changed = [dict(RECORDS[0], text="Sunburn should be treated with shade and water.")]
    report = ingest_paths(fresh_services, [write_jsonl(tmp_path / "b.jsonl", changed)], "medical")
    assert report.documents_replaced == 1
    chunks = fresh_services.index.current().chunks
    assert [c.text for c in chunks if c.doc_id == "t:1"] == [changed[0]["text"]]
    assert any(c.doc_id == "t:2" for c in chunks)


def test_bad_files_are_reported_and_good_ones_still_ingested(
    fresh_services, tmp_path: Path
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", RECORDS[:1])
    (tmp_path / "bad.jsonl").write_text("{broken\n")
    report = ingest_paths(
        fresh_services, [good, tmp_path / "bad.jsonl", tmp_path / "none.txt"], "medical"
    )
    assert report.documents_added == 1 and len(report.errors) == 2
    with pytest.raises(InvalidInput, match="unknown collection"):
        ingest_paths(fresh_services, [good], "astrology")
    # A file outside any collection's folder, with no collection given: a clear error.
    stray = tmp_path / "downloads" / "notes.md"
    stray.parent.mkdir()
    stray.write_text("# Notes\n\nSome text about asthma care at home.\n")
    report = ingest_paths(fresh_services, [stray], None)
    assert report.documents_added == 0
    assert any("unknown collection 'downloads'" in e for e in report.errors), report.errors


def test_delete_removes_from_index_and_registry(fresh_services, tmp_path: Path) -> None:
    ingest_paths(fresh_services, [write_jsonl(tmp_path / "a.jsonl", RECORDS)], "medical")
    assert delete_documents(fresh_services, ["t:1", "missing"]) == 1
    assert {c.doc_id for c in fresh_services.index.current().chunks} == {"t:2"}


def test_the_first_ingest_serves_keyword_search_while_it_embeds(
    fresh_services, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", RECORDS)
    seen: list[tuple[bool, list[str]]] = []

    def progress(fraction: float, message: str) -> None:
        if not seen:
            version = fresh_services.index.current()
            hits = fresh_services.index.search("security deposit", 2)
            seen.append((version.manifest.has_vectors, [h.chunk.doc_id for h in hits]))

    ingest_paths(fresh_services, [path], "medical", progress)
    # While the vectors were being computed, BM25 already answered.
    assert seen == [(False, ["t:2"])]
    final = fresh_services.index.current()
    assert final.manifest.has_vectors and final.dense is not None
    assert fresh_services.index.search("sun damage to the skin", 1)[0].chunk.doc_id == "t:1"


def test_a_new_chunking_rechunks_everything_and_reuses_unchanged_vectors(
    fresh_services, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", RECORDS)
    ingest_paths(fresh_services, [path], "medical")
    before = fresh_services.index.current()
    settings = fresh_services.settings.changed(retrieval={"chunk_overlap_sentences": 0})
    rechunking = Services(settings, {"embedder": fresh_services.embedder})
    report = ingest_paths(rechunking, [path], "medical")
    # Both documents are re-chunked (the chunking is part of their hash); their passages
    # are the same short texts, so no vector is computed again.
    assert (report.documents_replaced, report.vectors_reused) == (2, 2)
    after = rechunking.index.current()
    assert after.name != before.name
    assert (np.asarray(after.vectors) == np.asarray(before.vectors)).all()


def test_near_duplicate_documents_are_skipped_and_counted(fresh_services, tmp_path: Path) -> None:
    copy = dict(RECORDS[0], id="t:3", text=RECORDS[0]["text"].upper() + "  ")
    path = write_jsonl(tmp_path / "docs.jsonl", [*RECORDS, copy])
    report = ingest_paths(fresh_services, [path], "medical")
    assert (report.documents_added, report.duplicates_skipped) == (2, 1)
    assert {c.doc_id for c in fresh_services.index.current().chunks} == {"t:1", "t:2"}


@pytest.mark.slow
def test_real_documents_are_never_truncated_by_the_embedding_model(shared_models) -> None:
    embedder = shared_models.embedder
    budget = RetrievalSettings().chunk_tokens  # the default fills the window nearly to the end
    assert budget + 2 > embedder.max_tokens - 10
    for document in fixture_documents():
        chunks = chunk_document(document, embedder.count_tokens, budget, 1)
        counts = embedder.count_tokens([embedding_text(c) for c in chunks])
        assert max(counts) + 2 <= embedder.max_tokens


def test_ingesting_nothing_readable_into_an_empty_index_reports_it(
    fresh_services: Services, tmp_path: Path
) -> None:
    """Only a missing file, and no index yet: a report naming it, no empty version."""
    from assistant.corpus.ingest import ingest_paths

    report = ingest_paths(fresh_services, [tmp_path / "missing.txt"], "medical")

    assert report.documents_added == 0
    assert any("missing.txt" in error for error in report.errors)
    assert not fresh_services.index.exists()
