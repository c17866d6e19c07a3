"""The on-disk index with the real embedder, FAISS and BM25."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.config import SearchParams
from retrieval.ingest import chunk_documents, clean_documents
from retrieval.store import IndexStore
from retrieval.types import Document, IndexMissing
from tests.conftest import fixture_documents

pytestmark = pytest.mark.slow


def build(store: IndexStore, documents: list[Document], keep: set[str] | None = None) -> str:
    prepared = chunk_documents(clean_documents(documents), store.embedder.count_tokens, 200, 1)
    chunks = [c for p in prepared for c in p.chunks]
    return store.write_version(keep, chunks, store.embed_chunks(chunks), len(prepared))


@pytest.fixture()
def store(tmp_path: Path, shared_models) -> IndexStore:
    return IndexStore(tmp_path / "index", shared_models.embedder, SearchParams())


def test_search_before_any_index_says_what_to_do(store: IndexStore) -> None:
    with pytest.raises(IndexMissing, match="assistant ingest"):
        store.search("asthma", 3)


def test_hybrid_search_finds_the_right_page_with_exact_offsets(store: IndexStore) -> None:
    documents = fixture_documents()
    build(store, documents)
    texts = {d.doc_id: d.text for d in documents}
    hits = store.search("What are the symptoms of allergic asthma?", 5)
    assert hits[0].chunk.doc_id == "medquad:GHR:0000037"
    for hit in hits:
        assert texts[hit.chunk.doc_id][hit.chunk.start : hit.chunk.end] == hit.chunk.text
        assert -1.0 <= hit.dense_score <= 1.0
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_aliases_are_kept_in_the_index_and_find_their_page(store: IndexStore) -> None:
    build(store, fixture_documents())
    reloaded = IndexStore(store.index_dir, store.embedder, SearchParams()).current()
    by_doc = {c.doc_id: c.aliases for c in reloaded.chunks}
    assert by_doc["medquad:GARD:0003327"] == (
        "Idiopathic juvenile osteoporosis",
        "Osteoporosis, juvenile",
        "IJO",
    )
    assert store.search("my son has IJO, will he grow out of it", 5)[0].chunk.doc_id == (
        "medquad:GARD:0003327"
    )


def test_collection_filter_and_modes(store: IndexStore) -> None:
    build(store, fixture_documents())
    legal = store.search("distributor agreement territory", 5, collection="legal")
    assert legal and all(h.chunk.collection == "legal" for h in legal)
    medical = store.search("distributor agreement territory", 5, collection="medical")
    assert all(h.chunk.collection == "medical" for h in medical)
    assert store.search("anything", 5, collection="tax") == []
    for mode in ("dense", "bm25"):
        assert store.search("glaucoma in children", 3, mode=mode)[0].chunk.doc_id == (
            "medquad:GHR:0000311"
        )


def test_update_keeps_unchanged_documents_and_swaps_versions(store: IndexStore) -> None:
    documents = fixture_documents()[:6]
    first = build(store, documents)
    old = store.current()
    replacement = Document(
        documents[0].doc_id, "Zebra care", "Zebras need grass and water.", "medical"
    )
    keep = {d.doc_id for d in documents[1:]}
    second = build(store, [replacement], keep=keep)
    assert second != first and store.current_name() == second
    current = store.current()
    assert {c.doc_id for c in current.chunks} == keep | {replacement.doc_id}
    assert store.search("zebra grass", 1)[0].chunk.title == "Zebra care"
    # Vectors of kept documents were reused, not recomputed differently.
    kept_old = [i for i, c in enumerate(old.chunks) if c.doc_id in keep]
    kept_new = [i for i, c in enumerate(current.chunks) if c.doc_id in keep]
    assert (old.vectors[kept_old] == current.vectors[kept_new]).all()


def test_a_crash_while_writing_leaves_the_previous_version_serving(
    store: IndexStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = fixture_documents()[:4]
    first = build(store, documents)
    import bm25s

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(bm25s.BM25, "save", explode)
    with pytest.raises(OSError, match="disk full"):
        build(
            store,
            [Document("x", "X", "Some new text here.", "medical")],
            keep={d.doc_id for d in documents},
        )
    assert store.current_name() == first
    assert not [p for p in store.index_dir.iterdir() if p.name.startswith(".v")]
    assert store.search("leukemia", 1)
