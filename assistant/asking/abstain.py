"""Whether the evidence can be about what the question asks: the check before generating.

Search always returns something; for an invented disease or a contract that is not in the
corpus it returns the nearest other thing, and a small model answers from it. The clearest
sign is a name: a question word that the corpus does not know (even read as a misspelling
of a word it knows), that is not an everyday word of the language, and that no evidence
sentence or title spells closely, names a subject the sources do not have. Such a question
is declined before any generation. Subjects named only with everyday words ("a heart pump
for people who cannot tolerate CPAP") pass this check; the trained model declines those
itself, and its decline is kept.

A contract question that names its parties ("In the Services Agreement between Silverpine
Payroll Solutions, Inc. and Orchard Hill School District: ...") names them as the contract
writes them, so they are checked as written, without reading them as misspellings: when no
party's distinctive words are all in the corpus, the contract is not there.

A statute, code or rule named by its title ("the Australian Franchising Code of Conduct",
"the California Consumer Privacy Act") or by an acronym ("PIPEDA") is made of words the
corpus knows one by one; the sources can speak about it only if they write its name. Such
names are looked up as phrases, and a name no source writes declines the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from assistant.asking.contract_questions import read_contract_question

MIN_NAME_LETTERS = 4
FUZZY_MATCH = 80  # rapidfuzz ratio at which an evidence word spells a question word
# Words of a company's legal form: every contract has them, they tell no party apart
# (shorter ones, "Inc", "LLC", "AG", are already left out by MIN_NAME_LETTERS).
LEGAL_FORMS = frozenset("incorporated corp corporation company limited gmbh holdings group".split())


# A law's title: capitalised words (a year may sit among them) ending in a word that names
# a kind of law, and its "of ..." tail ("Code of Obligations", "Act of 1933").
_TITLE_WORD = r"(?:[A-Z][A-Za-z'’-]*|[0-9]{4})"
_LAW_KIND = r"(?:Acts?|Codes?|Rules?|Regulations?|Directives?|Laws?|Statutes?|Ordinances?|"
_LAW_KIND += r"Conventions?|Treaty|Treaties|Amendments?)"
NAMED_LAW = re.compile(
    rf"(?P<name>(?:{_TITLE_WORD}\s+){{1,7}}{_LAW_KIND}\b"
    rf"(?:\s+of\s+(?:the\s+)?(?:[A-Z][A-Za-z'’-]*)(?:\s+[A-Z][A-Za-z'’-]*)*)?)"
    rf"|(?P<kind_first>\b{_LAW_KIND}\s+of\s+(?:the\s+)?[A-Z][A-Za-z'’-]*(?:\s+[A-Z][A-Za-z'’-]*)*)"
)
# An acronym as a law or a product is written ("PIPEDA", "CCPA"); a shorter one is too often
# an everyday abbreviation.
ACRONYM = re.compile(r"\b[A-Z]{4,8}\b")
# Capitalised only because a sentence starts with it.
_SENTENCE_OPENERS = frozenset(
    "what does do did is are was were under can could how which when why who whom in after "
    "before per according a an the my our your will would should shall may might if".split()
)


class CorpusVocabulary(Protocol):
    """What the subject check asks of the corpus (the index store answers it)."""

    def unknown_words(self, text: str, exact: bool = False) -> list[str]:
        """The text's words no passage or name contains, even as misspellings (``exact``:
        as written)."""
        ...

    def has_phrase(self, phrase: str) -> bool:
        """Whether some passage or document name writes ``phrase``."""
        ...


@dataclass(frozen=True)
class SubjectCheck:
    answerable: bool
    unknown_names: tuple[str, ...]  # the question's words no source knows


def evidence_words(evidence_texts: Sequence[str]) -> set[str]:
    """The lower-case words of the evidence (and its titles)."""
    return {w for text in evidence_texts for w in re.findall(r"[a-z]+", text.lower())}


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

    seen = evidence_words(evidence_texts)
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
    evidence_texts: Sequence[str] = (),
) -> list[str]:
    """The distinctive words of the parties a contract question names, when no party is
    known to the corpus as written; empty when one is (or when none can be told apart).

    A party word one key away from a word of the evidence found ("STARAR" where the
    contract found writes STAAR) is that word mistyped, not another company."""
    named = read_contract_question(question)
    if named is None or not named.parties:
        return []
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    seen: set[str] | None = None  # read only when a party is not written as it is
    unknown: list[str] = []
    for party in named.parties:
        words = [
            w
            for w in re.findall(r"[a-z]+", party.lower())
            if len(w) >= MIN_NAME_LETTERS and w not in LEGAL_FORMS and w not in common_words
        ]
        if not words:
            continue  # "Orchard Hill School District": nothing to tell it apart
        missing = list(unknown_as_written(" ".join(words)))
        if missing and seen is None:
            seen = {w for w in evidence_words(evidence_texts) if len(w) >= MIN_NAME_LETTERS}
        missing = [
            w
            for w in missing
            if len(w) <= MIN_NAME_LETTERS
            or process.extractOne(w, seen or (), scorer=OSA.distance, score_cutoff=1) is None
        ]
        if not missing:
            return []  # a party's name the corpus has written: the contract may be there
        unknown.extend(missing)
    return unknown


def law_names(question: str) -> list[str]:
    """The titles of laws the question names, as phrases to look up (years left out: they
    are written in too many ways), and its acronyms."""
    named = read_contract_question(question)
    text = named.ask if named and named.parties else question  # parties: unknown_parties
    names: list[str] = []
    for match in NAMED_LAW.finditer(text):
        words = re.findall(r"[A-Za-z'’-]+", match.group(0))
        # "India's", "the FTC's": whose law it is, written in too many ways to look up.
        while words and (words[0].lower() in _SENTENCE_OPENERS or words[0][-2:] in ("'s", "’s")):
            words.pop(0)
        if len(words) >= 2:
            names.append(" ".join(words))
    names.extend(m.group(0) for m in ACRONYM.finditer(text))
    return list(dict.fromkeys(names))


def unknown_laws(
    question: str, corpus: CorpusVocabulary, common_words: Collection[str]
) -> list[str]:
    """The laws and acronyms the question names that no source writes."""
    unknown = []
    for name in law_names(question):
        if " " not in name and name.lower() in common_words:
            continue  # "NOTE", "HELP": shouting, not an acronym
        if not corpus.has_phrase(name):
            unknown.append(name)
    return unknown


def check_subject(
    question: str,
    corpus: CorpusVocabulary,
    common_words: Collection[str],
    evidence_texts: Sequence[str],
) -> SubjectCheck:
    """Whether the sources can be about what ``question`` asks, and if not, the names they
    never write."""
    names = unknown_names(question, corpus.unknown_words, common_words, evidence_texts)
    names += unknown_parties(
        question, lambda text: corpus.unknown_words(text, exact=True), common_words, evidence_texts
    )
    names += unknown_laws(question, corpus, common_words)
    return SubjectCheck(not names, tuple(dict.fromkeys(names)))
