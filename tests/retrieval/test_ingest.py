"""Cleaning before chunking: exact and near-duplicate documents."""

from __future__ import annotations

import re

from retrieval.ingest import clean_documents, clean_text, near_duplicates
from retrieval.types import Document

WORDS = (
    "the syndrome affects the retina kidneys and limbs and most people with it have extra "
    "fingers or toes vision loss starts in childhood and gets worse over time obesity often "
    "begins in early childhood some people also have learning problems delayed speech and "
    "kidney disease which can be life threatening genetic testing can confirm the diagnosis "
    "and treatment is aimed at each of the signs that a person has"
).split() + [f"finding{i}" for i in range(120)]


def text(words: list[str]) -> str:
    return " ".join(words) + "."


def jaccard(a: str, b: str) -> float:
    def grams(s: str) -> set[tuple[str, ...]]:
        w = re.findall(r"\w+", s.lower())
        return {tuple(w[i : i + 5]) for i in range(len(w) - 4)}

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def test_clean_text_normalises_line_ends_and_trailing_space() -> None:
    assert clean_text("Title  \r\n\r\nBody\r") == "Title\n\nBody"


def test_exact_and_near_copies_are_dropped_other_pages_kept() -> None:
    original = text(WORDS)
    # The same page again with other spacing, case and punctuation: a copy.
    copy = "  " + original.upper().replace(" the ", "  the,  ") + "  "
    # A sister page: the same template about another subtype, one word differs.
    sister_words = list(WORDS)
    sister_words[100] = "subtype7"
    sister = text(sister_words)
    # A slightly edited copy under the same title is still the same document.
    edited_words = list(WORDS)
    edited_words[40] = "usually"
    edited = text(edited_words)
    assert jaccard(original, copy) == 1.0
    assert 0.9 <= jaccard(original, sister) < 0.97
    assert 0.9 <= jaccard(original, edited) < 0.97
    documents = [
        Document("a", "Bardet-Biedl syndrome 6", original, "medical"),
        Document("b", "A mirror", copy, "medical"),
        Document("c", "Bardet-Biedl syndrome 7", sister, "medical"),
        Document("d", "Bardet-Biedl syndrome 6", edited, "medical"),
        Document("e", "Exact", original, "medical"),
    ]
    assert near_duplicates(documents) == {1, 3, 4}
    kept = [d.doc_id for d, _ in clean_documents(documents)]
    assert kept == ["a", "c"]


def test_the_chunking_is_part_of_the_content_hash() -> None:
    document = Document("a", "T", "Some text here.", "medical")
    [(_, first)] = clean_documents([document], chunking="2:200:1")
    [(_, same)] = clean_documents([document], chunking="2:200:1")
    [(_, other)] = clean_documents([document], chunking="2:128:1")
    assert first == same != other
