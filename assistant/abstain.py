"""Whether the evidence can be about what the question asks: the check before generating.

Search always returns something; for an invented disease or a contract that is not in the
corpus it returns the nearest other thing, and a small model answers from it. The clearest
sign is a name: a question word that the corpus does not know (even read as a misspelling
of a word it knows), that is not an everyday word of the language, and that no evidence
sentence or title spells closely, names a subject the sources do not have. Such a question
is declined before any generation. Subjects named only with everyday words ("the EU AI Act")
pass this check; the trained model declines those itself, and its decline is kept.

A contract question that names its parties ("In the Services Agreement between Silverpine
Payroll Solutions, Inc. and Orchard Hill School District: ...") names them as the contract
writes them, so they are checked as written, without reading them as misspellings: when no
party's distinctive words are all in the corpus, the contract is not there.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

MIN_NAME_LETTERS = 4
FUZZY_MATCH = 80  # rapidfuzz ratio at which an evidence word spells a question word
# "In the <contract> between <party> and <party>: <question>", the corpus QA's layout (and
# the one a follow-up about a contract is rewritten to).
NAMED_CONTRACT = re.compile(
    r"^\s*in the (?P<contract>[^:]{3,200}?) (?:between|involving|among|by and between) "
    r"(?P<parties>[^:]{3,300}):",
    re.IGNORECASE,
)
PARTY_SEPARATOR = re.compile(r"\s+and\s+|[;,]|\s*&\s*", re.IGNORECASE)
# Words of a company's legal form: every contract has them, they tell no party apart
# (shorter ones, "Inc", "LLC", "AG", are already left out by MIN_NAME_LETTERS).
LEGAL_FORMS = frozenset("incorporated corp corporation company limited gmbh holdings group".split())


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


def unknown_parties(
    question: str,
    unknown_as_written: Callable[[str], Sequence[str]],
    common_words: Collection[str],
) -> list[str]:
    """The distinctive words of the parties a contract question names, when no party is
    known to the corpus as written; empty when one is (or when none can be told apart)."""
    named = NAMED_CONTRACT.match(question)
    if named is None:
        return []
    unknown: list[str] = []
    for party in PARTY_SEPARATOR.split(named.group("parties")):
        words = [
            w
            for w in re.findall(r"[a-z]+", party.lower())
            if len(w) >= MIN_NAME_LETTERS and w not in LEGAL_FORMS and w not in common_words
        ]
        if not words:
            continue  # "Orchard Hill School District": nothing to tell it apart
        missing = unknown_as_written(" ".join(words))
        if not missing:
            return []  # a party's name the corpus has written: the contract may be there
        unknown.extend(missing)
    return unknown


def check_subject(
    question: str,
    corpus_unknown: Callable[..., Sequence[str]],
    common_words: Collection[str],
    evidence_texts: Sequence[str],
) -> SubjectCheck:
    """``corpus_unknown(text, exact=False)``: the text's words the corpus does not know,
    even read as misspellings (``exact``: as written)."""
    names = unknown_names(question, corpus_unknown, common_words, evidence_texts)
    names += unknown_parties(question, lambda text: corpus_unknown(text, exact=True), common_words)
    return SubjectCheck(not names, tuple(dict.fromkeys(names)))
