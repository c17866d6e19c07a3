"""Documents' names (titles and aliases) matched against a question's words."""

from __future__ import annotations

import numpy as np

from retrieval.names import ALIAS_WEIGHT, DocumentNames, distinctive, without_brackets
from retrieval.search import bm25_tokenize_words

TITLES = ["Neuromyelitis optica", "Heroin", "Mucopolysaccharidosis type III"]
ALIASES = [
    ("Devic disease", "NMO"),
    ("Smack", "Horse", "Black tar"),
    (),
]


def names() -> DocumentNames:
    return DocumentNames.build(TITLES, ALIASES, bm25_tokenize_words)


def words(text: str) -> set[str]:
    return set(bm25_tokenize_words([text])[0])


def test_an_alias_scores_its_document_a_little_below_its_title() -> None:
    table = names()
    docs = np.arange(3)
    by_alias = table.coverage(words("Is Devic disease inherited?"), docs)
    by_title = table.coverage(words("Is neuromyelitis optica inherited?"), docs)
    assert by_alias[0] == np.float32(ALIAS_WEIGHT) and by_title[0] == 1.0
    assert by_alias[1:].tolist() == [0.0, 0.0]
    half = table.coverage(words("optica"), docs)
    assert half[0] == 0.5  # the title's share wins over the aliases' (none)


def test_slang_one_word_aliases_do_not_name_a_document() -> None:
    table = names()
    assert table.named(words("I fell off a horse"), 5) == []
    assert table.named(words("smack"), 5) == []
    assert table.named(words("is black tar dangerous"), 5) == [1]
    assert table.named(words("what is NMO"), 5) == [0]  # an abbreviation does
    assert distinctive("aHUS", ["ahus"]) and distinctive("Acatalasia", ["acatalasia"])
    assert not distinctive("Junk", ["junk"])


def test_named_documents_come_longest_name_first_and_are_capped() -> None:
    table = DocumentNames.build(
        ["Spinocerebellar ataxia", "Spinocerebellar ataxia type 6", "Ataxia"],
        [(), (), ()],
        bm25_tokenize_words,
    )
    query = words("symptoms of spinocerebellar ataxia type 6")
    assert table.named(query, 5) == [1, 0, 2]
    assert table.named(query, 1) == [1]


def test_a_title_is_named_whole_without_its_bracketed_part() -> None:
    titles = ["Klippel-Trenaunay syndrome", "Klippel-Trenaunay Syndrome (KTS)"]
    table = DocumentNames.build(titles, [(), ()], bm25_tokenize_words)
    question = words("How is Klippel-Trenaunay syndrome treated?")
    assert table.coverage(question, np.arange(2)).tolist() == [1.0, 1.0]
    assert sorted(table.named(question, limit=5)) == [0, 1]
    assert table.title_words[1] == frozenset(words("Klippel-Trenaunay Syndrome"))
    # The full title, abbreviation included, still names it.
    assert table.coverage(words("What is Klippel-Trenaunay syndrome (KTS)?"), np.arange(2))[1] == 1
    assert without_brackets("(KTS)") == "(KTS)"  # nothing left: the title as it is
