"""Whether the evidence can be about what the question asks: the check before generating.

Search always returns something; for an invented disease or a contract that is not in the
corpus it returns the nearest other thing, and a small model answers from it. The clearest
sign is a name: a question word that the corpus does not know (even read as a misspelling
of a word it knows), that is not an everyday word of the language, and that no evidence
sentence or title spells closely, names a subject the sources do not have. Such a question
is declined before any generation. Subjects named only with everyday words ("the EU AI Act")
pass this check; the trained model declines those itself, and its decline is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

MIN_NAME_LETTERS = 4
FUZZY_MATCH = 80  # rapidfuzz ratio at which an evidence word spells a question word


@dataclass(frozen=True)
class SubjectCheck:
    answerable: bool
    unknown_names: tuple[str, ...]  # the question's words no source knows


def unknown_names(
    question: str,
    corpus_unknown: Callable[[str], Sequence[str]],
    common_words: Collection[str],
    evidence_texts: Sequence[str],
) -> list[str]:
    """The question's name-like words that neither the corpus nor the evidence knows."""
    from rapidfuzz import fuzz, process

    candidates = [
        w
        for w in corpus_unknown(question)
        if len(w) >= MIN_NAME_LETTERS and w.isalpha() and w not in common_words
    ]
    if not candidates:
        return []
    from rapidfuzz.distance import OSA

    seen = {w for text in evidence_texts for w in re.findall(r"[a-z]+", text.lower())}
    names = []
    for word in candidates:
        spelled = process.extractOne(word, seen, scorer=fuzz.ratio, score_cutoff=FUZZY_MATCH)
        # A slip of one key in an everyday or evidence word ("anythng", "fiel" for Feil).
        slip = process.extractOne(word, [*seen, *common_words], scorer=OSA.distance, score_cutoff=1)
        if spelled is None and slip is None:
            names.append(word)
    return names


def check_subject(
    question: str,
    corpus_unknown: Callable[[str], Sequence[str]],
    common_words: Collection[str],
    evidence_texts: Sequence[str],
) -> SubjectCheck:
    names = unknown_names(question, corpus_unknown, common_words, evidence_texts)
    return SubjectCheck(not names, tuple(names))
