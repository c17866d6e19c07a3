"""People's names: after a title or an introduction, or a known given name with its surname."""

from __future__ import annotations

import re
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from safety.recognizers.base import CAP_WORD, RegexRecognizer, recognizer_result
from safety.recognizers.name_lists import (
    AMBIGUOUS_FIRST_NAMES,
    COMMON_SURNAME_WORDS,
    given_names,
    surnames,
)
from safety.recognizers.places import NOT_PLACES

# Courtesy titles; with the name they are one finding ("Dr. Kyle Kuefer" -> "<PERSON_1>").
TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sra|Herr|Frau|Mme|Mlle)"


class TitledNameRecognizer(RegexRecognizer):
    """Names after a courtesy title or an introduction ("Dr. Kyle Kuefer", "my name is ...",
    "call me Csanád", "my son Tadzio", "Hi Torben")."""

    ENTITY = "PERSON"
    FLAGS = 0
    NAME = rf"{CAP_WORD}(?:\s+(?:[A-Z]\.|{CAP_WORD})){{0,3}}"
    INTRODUCTION = (
        r"(?:(?:my|his|her|their|your|the)\s+)?(?:(?:last|first|full|maiden|middle|family|given|"
        r"sur)\s*)?name\s*(?:is|was|:|\?)|i\s+am|i'm|this\s+is|called|named|call(?:s|ed)?\s+me|"
        r"patient|client|signed|regards,|sincerely,|thanks,|hi|hello|dear|hey|says|said|"
        r"(?:my|our|his|her)\s+(?:son|daughter|kid|child|wife|husband|partner|mother|father|mom|"
        r"mum|dad|brother|sister|grandmother|grandfather|grandson|granddaughter|aunt|uncle|"
        r"cousin|niece|nephew|friend|neighbou?r|boss|colleague|fianc[ée]e?|boyfriend|girlfriend)"
    )

    def __init__(self) -> None:
        self.PATTERNS = (
            (rf"(?P<value>\b{TITLES}\.?\s+{self.NAME})", 0.75),
            # Lower-case text: the title needs its dot (the name is re-cased when known).
            (rf"(?P<value>\b(?i:{TITLES})\.\s+{self.NAME})", 0.7),
            # Above GivenNameRecognizer's score: Presidio keeps one of two equal spans.
            (rf"(?i:\b(?:{self.INTRODUCTION}))[ \t]+(?P<value>{self.NAME})", 0.65),
        )
        super().__init__()

    def validate(self, value: str) -> bool:
        words = re.sub(rf"^(?i:{TITLES})\.?\s+", "", value).split()
        return bool(words) and words[0].lower().rstrip(".,") not in _NOT_NAMES


_NOT_NAMES = NOT_PLACES | {
    "i",
    "not",
    "very",
    "so",
    "worried",
    "pregnant",
    "diabetic",
    "dr",
    "doctor",
    "in",
    "at",
    "on",
    "from",
    "sir",
    "madam",
    "team",
    "all",
    "everyone",
    "there",
    "again",
    "good",
    "thank",
    "thanks",
    "please",
    "is",
    "was",
}


class GivenNameRecognizer(EntityRecognizer):
    """A capitalised proper noun that is a known given name, with the proper nouns after it
    (the surname): the small NER model misses many names, above all short ones."""

    ENTITY = "PERSON"

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__)

    def load(self) -> None:
        self.first_names = given_names() - AMBIGUOUS_FIRST_NAMES
        self.surnames = surnames() - COMMON_SURNAME_WORDS - AMBIGUOUS_FIRST_NAMES

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or not self.first_names:
            return []
        tokens = list(nlp_artifacts.tokens)
        results = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            lower = token.text.lower()
            if (
                token.is_title
                and token.pos_ == "PROPN"
                and (
                    lower in self.first_names
                    # A surname alone only inside a sentence: at its start, a capital says
                    # nothing.
                    or (lower in self.surnames and not token.is_sent_start and len(lower) > 3)
                )
            ):
                end = i
                while (
                    end + 1 < len(tokens)
                    and end - i < 3
                    and tokens[end + 1].pos_ == "PROPN"
                    and (tokens[end + 1].is_title or tokens[end + 1].text[:1].isupper())
                    and tokens[end + 1].whitespace_ is not None
                    and not tokens[end].text.endswith("\n")
                ):
                    end += 1
                start_char = token.idx
                end_char = tokens[end].idx + len(tokens[end].text)
                if not self._names_something_else(tokens, i, end):
                    results.append(recognizer_result(self, self.ENTITY, start_char, end_char, 0.6))
                i = end + 1
            else:
                i += 1
        return results

    @staticmethod
    def _names_something_else(tokens: list[Any], first: int, last: int) -> bool:
        """ "Parkinson's disease", "Lynch syndrome", "the Civil Rights Act": an eponym or a
        named thing, not a person."""
        following = [t.text.lower() for t in tokens[last + 1 : last + 3]]
        if following[:1] == ["'s"]:
            following = following[1:]
        words = [t.text.lower() for t in tokens[first : last + 1]] + following[:1]
        return any(w in _NAMED_THINGS for w in words)


# Words after which a capitalised name is a disease, a law, a place or an organisation.
_NAMED_THINGS = set(
    """
    disease diseases syndrome syndromes disorder palsy sign test tumor tumour tumors anemia
    anaemia ataxia dystrophy sarcoma lymphoma dementia procedure maneuver manoeuvre
    scale score criteria classification law laws act acts code rule rules amendment
    clause agreement treaty doctrine court inc ltd llc corp corporation company co
    group bank foundation institute institution center centre clinic hospital
    university college school association society orchestra street road avenue
    """.split()
)
