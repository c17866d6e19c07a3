"""Names found by the company they keep in one text, where the NER model missed them."""

from __future__ import annotations

import re

from safety.pii_types import PIISpan


def repeated_mentions(text: str, found: list[PIISpan]) -> list[PIISpan]:
    """Every other occurrence of a value already found, and of each part of a found name.

    The NER model often tags a name once and misses it later in the same text ("Eleanor
    Whitcombe asked ... Eleanor said ..."): once a value is known to be personal, all of its
    mentions are.
    """
    values: dict[str, PIISpan] = {}
    for span in found:
        value = text[span.start : span.end]
        values.setdefault(value, span)
        if span.entity_type == "PERSON":
            for part in name_parts(value):
                values.setdefault(part, span)
    extra = []
    for value, span in values.items():
        for match in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text):
            extra.append(PIISpan(match.start(), match.end(), span.entity_type, span.score))
    return extra


# One capitalised word that is not an English word; lists of them ("Monjeau, Graves and Reed");
# a speaker's name at the start of a line ("Halldór: What a wife.").
_CAP_WORD = r"[A-ZÀ-ÖØ-ÞĀ-ſА-ЯΑ-Ω][^\W\d_]+(?:['’-][^\W\d_]+)?"
_NAME_LIST = re.compile(
    rf"\b{_CAP_WORD}(?:\s*,\s*{_CAP_WORD})*\s*,?\s+(?:and|or|&)\s+{_CAP_WORD}\b"
)
_SPEAKER = re.compile(rf"^[ \t>]*({_CAP_WORD}):[ \t]*(?=\S)", re.MULTILINE)


def names_in_company(text: str, found: list[PIISpan], common: frozenset[str]) -> list[PIISpan]:
    """Names known by the company they keep.

    In a list of single capitalised words ("founders: Monjeau, Graves and Reed") where one is
    a found name, the others that are not English words are names too; so is a word that
    opens a line as a speaker ("Halldór: What a wife."), when it is not an English word.
    """
    names = [s for s in found if s.entity_type == "PERSON"]
    extra = []
    for match in _NAME_LIST.finditer(text):
        words = list(re.finditer(_CAP_WORD, match.group(0)))
        spans = [(match.start() + w.start(), match.start() + w.end()) for w in words]
        if not any(any(s.start <= a and b <= s.end for s in names) for a, b in spans):
            continue
        for a, b in spans:
            if text[a:b].casefold() not in common:
                extra.append(PIISpan(a, b, "PERSON", 0.5))
    for match in _SPEAKER.finditer(text):
        word = match.group(1)
        # "ValueError:" and other CamelCase identifiers are no speakers.
        if word[1:].islower() and word.casefold() not in common and word.casefold() not in _LABELS:
            extra.append(PIISpan(match.start(1), match.end(1), "PERSON", 0.5))
    return extra


_WORD_BEFORE = re.compile(rf"({_CAP_WORD})[ \t]+$")


def names_just_before(
    text: str, found: list[PIISpan], names: frozenset[str], common: frozenset[str]
) -> list[PIISpan]:
    """A found name together with the known given name or surname just before it.

    The small NER model often takes a name that opens a sentence for a verb or a noun and tags
    only the rest: in "Rosalind Quarrendon here ..." it found "Quarrendon" and "Rosalind" was
    stored as it was.
    """
    extra = []
    for span in found:
        if span.entity_type != "PERSON":
            continue
        match = _WORD_BEFORE.search(text, max(0, span.start - 40), span.start)
        if match is None:
            continue
        word = match.group(1).casefold()
        if word in names and word not in common:
            extra.append(PIISpan(match.start(1), span.end, "PERSON", span.score))
    return extra


# Field labels that are not English words.
_LABELS = {"re", "fwd", "fw", "cc", "bcc", "ps", "nb", "faq", "dob", "ssn", "mrn", "url"}


def name_parts(name: str) -> list[str]:
    """The words of a name of several words, less courtesy titles (none for one word)."""
    if " " not in name.strip():
        return []
    parts = re.findall(r"[^\W\d_][\w'-]{2,}", name)
    return [p for p in parts if p.casefold() not in _TITLE_WORDS]


# A courtesy title is part of a found name, but its other mentions are not names.
_TITLE_WORDS = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sr", "sra", "herr", "frau"}
_TITLE_WORDS |= {"mme", "mlle", "phd", "md"}
