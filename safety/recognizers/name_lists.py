"""Census given names and surnames, and the English words among them, as lower-case sets."""

from __future__ import annotations

import contextlib
from typing import Any

from safety.recognizers.places import COUNTRIES

# Given names that are also ordinary English words (or body parts, months): never taken alone.
AMBIGUOUS_FIRST_NAMES = {
    "may",
    "june",
    "april",
    "august",
    "will",
    "grace",
    "hope",
    "faith",
    "joy",
    "sunny",
    "crystal",
    "amber",
    "ruby",
    "pearl",
    "iris",
    "rose",
    "lily",
    "dawn",
    "summer",
    "autumn",
    "page",
    "bill",
    "pat",
    "sue",
    "mark",
    "art",
    "gene",
    "major",
    "van",
    "royal",
    "king",
    "chance",
    "guy",
    "don",
    "ray",
    "wade",
    "an",
    "in",
    "so",
    "long",
    "young",
    "else",
    "rich",
    "sage",
    "storm",
    "star",
    "sky",
    "river",
    "golden",
    "miles",
    "max",
    "jack",
    "frank",
    "harry",
    "jean",
    "ivy",
    "holly",
    "olive",
    "violet",
    "jewel",
    "precious",
    "angel",
    "china",
    "dusty",
    "rusty",
    "lane",
    "drew",
    "carol",
    "eve",
    "ma",
    "la",
    "le",
    "de",
    "do",
    "my",
    "the",
    "son",
    "man",
    "sir",
    "lord",
    "love",
    "care",
    "cure",
    "penny",
    "nova",
}


def given_names(top: int | None = None) -> set[str]:
    """US census given names (the ``names`` package ships the lists as data files, most
    frequent first); ``top``: only the first so many of each list."""
    from importlib.resources import files

    found: set[str] = set()
    for name in ("dist.female.first", "dist.male.first"):
        resource = files("names").joinpath(name)
        lines = [line for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]
        found.update(line.split()[0].lower() for line in lines[:top])
    return found


def surnames(top: int | None = None) -> set[str]:
    from importlib.resources import files

    text = files("names").joinpath("dist.all.last").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    return {line.split()[0].lower() for line in lines[:top]}


def known_names() -> frozenset[str]:
    """Given names and surnames (lower case) and country names, for re-casing lower-case text."""
    found = set(given_names()) | surnames()
    found.update(n.lower() for n in COUNTRIES)
    return frozenset(found)


def english_words(nlp_engine: Any) -> frozenset[str]:
    """English lemmas (lower case) from the spaCy lemmatizer's word lists (WordNet), less the
    country names; empty when the pipeline has no such lists."""
    try:
        lookups = nlp_engine.nlp["en"].get_pipe("lemmatizer").lookups
    except (AttributeError, KeyError, ValueError):
        return frozenset()
    lemmas: set[str] = set()
    # lemma_index: part of speech -> lemmas; lemma_exc: part of speech -> {irregular form: ...}.
    for table in ("lemma_index", "lemma_exc"):
        if table in lookups.tables:
            for entries in lookups.get_table(table).values():
                lemmas.update(e for e in entries if e.isalpha())
    return frozenset(lemmas - {c.lower() for c in COUNTRIES})


def common_words(nlp_engine: Any) -> frozenset[str]:
    """English words that are also names ("will", "young", "price", "credit"): never re-cased.

    The census surname list holds tens of thousands of everyday words ("payment", "person",
    "music"); the spaCy lemmatizer's word lists name them. A frequent given name stays a name
    even when it is also a word ("kelly", "jordan").
    """
    words = set(AMBIGUOUS_FIRST_NAMES)
    words.update(COMMON_SURNAME_WORDS)
    with contextlib.suppress(AttributeError, KeyError):
        words.update(nlp_engine.nlp["en"].Defaults.stop_words)
    frequent = given_names(top=_FREQUENT_NAMES)
    for lemma in english_words(nlp_engine):
        forms = {lemma, lemma + "s", lemma + "es", lemma + "ed", lemma + "d", lemma + "ing"}
        words.update(f for f in forms if f not in frequent)
    return frozenset(words - {c.lower() for c in COUNTRIES})


def word_names(nlp_engine: Any) -> frozenset[str]:
    """English words that are census names but not frequent ones ("princess", "shadow",
    "sunday"): alone, such a word is taken for a name only when something else says so."""
    frequent = given_names(top=_FREQUENT_NAMES) | surnames(top=_FREQUENT_NAMES)
    return english_words(nlp_engine) - frequent


# How many of the most frequent census names (each list) are names before words.
_FREQUENT_NAMES = 1000


# Census surnames that are everyday words; a lower-case "call" or "price" is not a name.
COMMON_SURNAME_WORDS = set(
    """
    key reed young white black brown green gray grey hall price cash rich long short
    little small large best good hill wood woods stone rock field fields king lord bishop
    pope major love hope joy bell bells call page post mark bill will may june april
    day night morning summer winter spring snow rain storm frost wind sun moon star
    house home street lane way road park bank banks case cook baker miller hunter fisher
    carpenter mason porter turner walker singer taylor fox wolf bird crane swan lamb
    bull hart deer lion fish rose lily iris ivy holly daisy heather violet olive
    cherry berry apple orange lemon sugar salt pepper honey rice bean beans wheat
    more most less ill sick well cure care hurt pain head heart hand hands foot feet
    back side arm leg bone blood skin hair brain lung lungs liver kidney doctor nurse
    parent child baby son sons mother father brother sister wife husband friend
    free law lawyer judge court counsel sue rule rules trust lease sale sales cost
    meet meets met take takes made make pay paid can cannot should would could must
    number phone call calls money card cards account address name names email mail
    says said tell told ask asked worried pregnant diabetes cancer asthma tablet dose
    """.split()
)
