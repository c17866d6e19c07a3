"""Fusion and passage ranking on a small real BM25 + FAISS index (vectors made by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.search import Searcher, SearchParams, bm25_tokenize, rrf_fuse
from retrieval.types import Chunk

DIMENSION = 8


def test_rrf_rewards_items_both_rankings_agree_on() -> None:
    fused = rrf_fuse([([1, 2, 3], 1.0), ([3, 1, 4], 1.0)], rrf_k=60)
    order = [item for item, _ in fused]
    assert order[0] == 1  # ranked 1st and 2nd beats 3rd and 1st
    assert order.index(3) < order.index(2)
    assert set(order) == {1, 2, 3, 4}


def test_rrf_weights_shift_the_balance() -> None:
    fused = rrf_fuse([([1, 2], 0.1), ([2, 1], 5.0)], rrf_k=60)
    assert fused[0][0] == 2


def unit(*weights: float) -> np.ndarray:
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


# Two contracts whose every passage names their parties (as CUAD's do), one medical page.
PASSAGES = [
    ("acme", "legal", "Acme and Birch agree that Acme supplies widgets to Birch.", unit(1, 0.2)),
    ("acme", "legal", "Acme and Birch: Birch pays Acme within thirty days.", unit(1, 0.1)),
    ("acme", "legal", "Acme and Birch may terminate on ninety days notice.", unit(1, 0, 0.3)),
    ("acme", "legal", "Acme and Birch: this agreement is governed by Delaware law.", unit(1, 0.3)),
    ("acme", "legal", "Acme and Birch keep each other's secrets confidential.", unit(1, 0.2, 0.1)),
    ("acme", "legal", "Acme and Birch: notices go to the addresses above.", unit(1, 0.1, 0.1)),
    ("cedar", "legal", "Cedar licenses software to Dune for one year.", unit(0, 1)),
    ("cedar", "legal", "Cedar or Dune may terminate for a breach not cured.", unit(0, 1, 0.2)),
    ("flu", "medical", "Influenza causes fever, cough and aches.", unit(0, 0, 0, 1)),
]


def searcher_over(
    chunks: list[Chunk],
    vectors: np.ndarray,
    collections: dict[str, list[int]],
    keyword_texts: list[str],
) -> Searcher:
    """A Searcher over real FAISS and bm25s indexes of ``chunks``."""
    import bm25s
    import faiss

    dense = faiss.IndexFlatIP(DIMENSION)
    dense.add(vectors)
    bm25 = bm25s.BM25()
    bm25.index(bm25_tokenize(keyword_texts), show_progress=False)
    return Searcher(chunks, vectors, dense, bm25, collections)


@pytest.fixture(scope="module")
def searcher() -> Searcher:
    chunks = [
        Chunk(doc, doc.title(), collection, "", 0, len(text), text)
        for doc, collection, text, _ in PASSAGES
    ]
    vectors = np.stack([v for *_, v in PASSAGES])
    collections = {"legal": [0, 8], "medical": [8, 9]}
    return searcher_over(chunks, vectors, collections, [c.text for c in chunks])


def texts(hits) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.chunk.text for h in hits]


def test_words_every_passage_of_a_document_has_stop_deciding(searcher: Searcher) -> None:
    terms = searcher.query_terms("When may Acme or Birch terminate?")
    local = searcher.local_bm25(terms, np.array([0]))[:6]
    # Inside the Acme contract "acme" and "birch" are in every passage: only "terminate"
    # tells the passages apart.
    assert int(np.argmax(local)) == 2
    others = np.delete(local, 2)
    assert local[2] > 5 * others.max()
    # Corpus-wide IDF still counts the party names, so the margin is much smaller there.
    global_scores = searcher.bm25_scores(terms, 0, 9)[:6]
    assert local[2] / others.max() > 2 * global_scores[2] / np.delete(global_scores, 2).max()


def test_passages_of_the_best_document_come_first(searcher: Searcher) -> None:
    query = "When may Acme or Birch terminate?"
    hits = searcher.search(query, unit(1, 0, 0.2), k=5)
    assert texts(hits)[0] == PASSAGES[2][2]
    assert [h.chunk.doc_id for h in hits[:4]] == ["acme"] * 4
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    # dense_score is the real cosine, for the low-confidence flag.
    assert hits[0].dense_score == pytest.approx(float(unit(1, 0, 0.3) @ unit(1, 0, 0.2)), abs=1e-5)


def test_one_document_fills_at_most_max_per_doc_places(searcher: Searcher) -> None:
    query = "Acme and Birch"
    capped = searcher.search(query, unit(1, 0.1), k=8, params=SearchParams(max_per_doc=3))
    assert [h.chunk.doc_id for h in capped].count("acme") == 3
    assert "cedar" in {h.chunk.doc_id for h in capped}


def test_modes_and_collection_filter(searcher: Searcher) -> None:
    vector = unit(0, 0, 0, 1)
    for mode in ("hybrid", "dense", "bm25"):
        hits = searcher.search("influenza fever", vector, k=3, mode=mode)
        assert hits[0].chunk.doc_id == "flu", mode
        legal = searcher.search("influenza fever", vector, k=3, collection="legal", mode=mode)
        assert all(h.chunk.collection == "legal" for h in legal), mode
    assert searcher.search("fever", vector, k=3, collection="tax") == []
    with pytest.raises(ValueError, match="mode"):
        searcher.search("fever", vector, k=3, mode="magic")


def test_plain_rrf_is_still_available_for_comparison(searcher: Searcher) -> None:
    hits = searcher.search(
        "Cedar Dune terminate", unit(0, 1, 0.2), k=3, params=SearchParams(fusion="rrf")
    )
    assert hits[0].chunk.doc_id == "cedar"


def test_without_vectors_search_falls_back_to_keywords(searcher: Searcher) -> None:
    keyword_only = Searcher(
        searcher.chunks, searcher.vectors[:0], None, searcher.bm25, searcher.collections
    )
    hits = keyword_only.search("Dune license software", None, k=2)
    assert hits[0].chunk.text == PASSAGES[6][2]
    assert hits[0].dense_score == 0.0


def test_search_params_are_validated() -> None:
    with pytest.raises(ValueError):
        SearchParams(doc_dense_weight=1.5)
    with pytest.raises(ValueError):
        SearchParams(max_per_doc=0)


def two_topic_searcher(titles: tuple[str, str], first_passages: tuple[str, str]) -> Searcher:
    """Two pages with the same kind of passages, the first slightly closer in vectors."""
    treatment = "It is treated with inhalers and by avoiding triggers."
    rows = [
        ("a", titles[0], first_passages[0], unit(1, 0.30)),
        ("a", titles[0], treatment, unit(1, 0.5, 0.1)),
        ("b", titles[1], first_passages[1], unit(1, 0.32)),
        ("b", titles[1], treatment, unit(1, 0.5, 0.2)),
    ]
    chunks = [Chunk(doc, title, "medical", "", 0, len(text), text) for doc, title, text, _ in rows]
    vectors = np.stack([v for *_, v in rows])
    keyword_texts = [f"{c.title}\n{c.text}" for c in chunks]
    return searcher_over(chunks, vectors, {"medical": [0, 4]}, keyword_texts)


def test_the_page_whose_title_the_question_names_ranks_first() -> None:
    searcher = two_topic_searcher(
        ("Childhood asthma", "Adult asthma"),
        ("Asthma in children narrows the airways.", "Asthma in adults narrows the airways."),
    )
    question = "What is childhood asthma?"
    vector = unit(1, 0.31)
    plain = searcher.search(question, vector, k=2, params=SearchParams(title_weight=0))
    titled = searcher.search(question, vector, k=2, params=SearchParams(title_weight=0.4))
    assert plain[0].chunk.doc_id == "b"  # the vectors alone prefer the other page
    assert titled[0].chunk.doc_id == "a"
    match = searcher.title_match(set(searcher.query_words(question)), np.array([0, 1]))
    assert match.tolist() == [1.0, 0.5]
    assert searcher.title_match(set(), np.array([0, 1])).tolist() == [0.0, 0.0]


def alias_searcher() -> Searcher:
    """Three pages; the first is known by another name that its passages never use."""
    rows = [
        (
            "nmo",
            "Neuromyelitis optica",
            ("Devic disease",),
            "It damages the optic nerves.",
            unit(0, 1),
        ),
        ("ms", "Multiple sclerosis", (), "A disease of the brain and spinal cord.", unit(1, 0.2)),
        ("flu", "Influenza", (), "Influenza causes fever and cough.", unit(0, 0, 1)),
    ]
    chunks = [
        Chunk(doc, title, "medical", "", 0, len(text), text, aliases)
        for doc, title, aliases, text, _ in rows
    ]
    vectors = np.stack([v for *_, v in rows])
    keyword_texts = [f"{c.title}\n{c.text}" for c in chunks]
    return searcher_over(chunks, vectors, {"medical": [0, 3]}, keyword_texts)


def test_a_document_the_question_names_is_a_candidate_whatever_the_retrievers_say() -> None:
    searcher = alias_searcher()
    words = set(searcher.query_words("My sister has Devic's disease. Does it run in families?"))
    assert searcher.named_passages(words, limit=10, first=0, end=3) == [0]
    assert searcher.named_passages(words, limit=10, first=1, end=3) == []  # filtered out
    assert searcher.named_passages(words, limit=0, first=0, end=3) == []
    assert searcher.named_passages({"diseas"}, limit=10, first=0, end=3) == []


def test_an_alias_counts_as_the_title_does_in_the_documents_score() -> None:
    searcher = alias_searcher()
    vector = unit(0.5, 0.52)  # about as close to both pages
    plain = searcher.search("Devic", vector, k=1, params=SearchParams(title_weight=0))
    named = searcher.search("Devic", vector, k=1)
    assert plain[0].chunk.doc_id == "ms" and named[0].chunk.doc_id == "nmo"


def test_misspelled_words_are_read_as_the_indexs_own_words() -> None:
    searcher = alias_searcher()
    assert searcher.query_words("neuromyelitis optika") == ["neuromyel", "optica"]
    assert searcher.query_words("devics desease")[0] == "devic"  # a word only an alias has
    hits = searcher.search("influensa", None, k=1, mode="bm25")
    assert hits and hits[0].chunk.doc_id == "flu"


def intent_searcher() -> Searcher:
    """One page whose passages all lean towards its title; the second says how common it is."""
    title, frequency = unit(1), unit(0.8, 0.4)  # dimension 1 stands for "how many people"
    rows = [
        ("bws", "Beckwith syndrome", "A growth disorder of childhood.", unit(1)),
        ("bws", "Beckwith syndrome", "One in 13,700 newborns has it.", frequency),
        ("flu", "Influenza", "Influenza causes fever and cough.", unit(0, 0, 1)),
    ]
    chunks = [Chunk(doc, name, "medical", "", 0, len(text), text) for doc, name, text, _ in rows]
    vectors = np.stack([v for *_, v in rows])
    import bm25s
    import faiss

    dense = faiss.IndexFlatIP(DIMENSION)
    dense.add(vectors)
    bm25 = bm25s.BM25()
    bm25.index(bm25_tokenize([c.text for c in chunks]), show_progress=False)
    titles = np.stack([title, unit(0, 0, 1)])
    return Searcher(chunks, vectors, dense, bm25, {"medical": [0, 3]}, titles)


def test_inside_a_page_what_the_question_asks_about_its_subject_decides() -> None:
    searcher = intent_searcher()
    question = "How many people are affected by Beckwith syndrome?"
    vector = unit(1, 0.2)  # mostly the subject, a little "how many"
    plain = searcher.search(question, vector, k=2, params=SearchParams(intent_weight=0))
    assert plain[0].chunk.text == "A growth disorder of childhood."
    asked = searcher.search(question, vector, k=2)
    assert asked[0].chunk.text == "One in 13,700 newborns has it."


def test_the_question_without_the_title_counts_only_when_it_names_the_page() -> None:
    searcher = intent_searcher()
    docs = np.array([0, 1])

    def weights(question: str) -> list[float]:
        words = searcher.query_words(question)
        return [float(w) for w in searcher.intent_weights(docs, words, 0.7)]

    assert weights("How many people are affected by Beckwith syndrome?") == pytest.approx([0.7, 0])
    assert weights("Beckwith syndrome") == [0.0, 0.0]  # nothing else is asked
    # "what" is the one word besides the name (bm25s keeps it): a third of the weight.
    assert weights("What is Beckwith syndrome?") == pytest.approx([0.7 / 3, 0])
    # Half the title named, two words asked of three.
    assert weights("Beckwith: how common?") == pytest.approx([0.7 * 0.5 * 2 / 3, 0])
    assert weights("How many people are affected?") == [0.0, 0.0]  # the page is not named


def test_a_phrase_is_found_only_where_its_words_stand_together(searcher: Searcher) -> None:
    assert searcher.has_phrase("governed by Delaware law")
    assert searcher.has_phrase("NINETY  days\nnotice")  # case and spacing aside
    assert searcher.has_phrase("Cedar")  # a document's name
    assert not searcher.has_phrase("Delaware notices")  # both words known, never together
    assert not searcher.has_phrase("Delaware franchise")  # a word the index lacks
    assert searcher.has_phrase("the")  # nothing to look up


def test_answer_types_choose_among_a_contracts_passages_not_between_contracts(
    searcher: Searcher,
) -> None:
    from dataclasses import replace

    from retrieval.answer_types import AnswerTypes

    asks = np.stack([unit(0, 0, 0, 0, 1), unit(0, 0, 0, 0, 0, 1)])
    answers = np.stack([unit(1, 0, 0.3), unit(1, 0.3)])  # the termination, Delaware passages
    types = AnswerTypes(("Termination", "Governing Law"), asks, answers, "legal")
    question = unit(1, 0.2, 0, 0, 0.5)  # leans to Termination, but is closest to "widgets"
    params = SearchParams(answer_type_weight=0.8)
    plain = searcher.search("When?", question, k=3, params=params)
    typed = searcher.search("When?", question, k=3, params=params, answer_types=types)
    assert "terminate" not in plain[0].chunk.text
    assert "terminate on ninety days" in typed[0].chunk.text
    assert {h.chunk.doc_id for h in typed} == {h.chunk.doc_id for h in plain}
    assert typed[0].score == pytest.approx(plain[0].score)  # the document's own best kept
    # Types of another collection, or weighed 0, change nothing.
    medical = replace(types, collection="medical")
    unchanged = searcher.search("When?", question, k=3, params=params, answer_types=medical)
    off = searcher.search(
        "When?", question, k=3, params=SearchParams(answer_type_weight=0), answer_types=types
    )
    assert texts(unchanged) == texts(plain) == texts(off)
