"""Ingestion through the product: registry, idempotency, replacement, deletion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.corpus import delete_documents, ingest_paths
from assistant.errors import InvalidInput
from assistant.storage import models

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


def test_delete_removes_from_index_and_registry(fresh_services, tmp_path: Path) -> None:
    ingest_paths(fresh_services, [write_jsonl(tmp_path / "a.jsonl", RECORDS)], "medical")
    assert delete_documents(fresh_services, ["t:1", "missing"]) == 1
    assert {c.doc_id for c in fresh_services.index.current().chunks} == {"t:2"}
