"""What the domain recognizers share: word patterns, the result they report, and the
regular-expression recognizer most of them are."""

from __future__ import annotations

import re
from collections.abc import Sequence

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

# Letters of any script (Faker-made and real addresses are not all ASCII).
L = r"[^\W\d_]"
# Words are bounded: an unbounded word before a suffix made the street pattern quadratic
# ("a." repeated 4,000 times took 1.5 s); no real word is longer than 40 letters.
WORD = rf"{L}[\w'’.-]{{0,40}}"
# An upper-case first letter in Latin, Greek or Cyrillic script.
CAP = "[A-ZÀ-ÖØ-ÞĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮİĴĶĹĻĽĿŁŃŅŇŊŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽΆΈ-ΏΑ-ΩЀ-Я]"
CAP_WORD = rf"{CAP}[\w'’-]{{0,40}}"


def recognizer_result(
    recognizer: EntityRecognizer, entity: str, start: int, end: int, score: float
) -> RecognizerResult:
    return RecognizerResult(
        entity_type=entity,
        start=start,
        end=end,
        score=score,
        # Presidio defaults it to None but types it AnalysisExplanation.
        analysis_explanation=None,  # type: ignore[arg-type]
        recognition_metadata={
            RecognizerResult.RECOGNIZER_NAME_KEY: type(recognizer).__name__,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id,
        },
    )


class RegexRecognizer(EntityRecognizer):
    """One entity found by regular expressions; the span is the named group ``value``.

    Class names must not repeat Presidio's own (it finds recognizer classes by name).

    The key words ("MRN", "driver's license number is") are part of the expression, so that a
    bare number is never taken for an identifier, but only the value itself is replaced.
    """

    ENTITY = ""
    PATTERNS: Sequence[tuple[str, float]] = ()
    FLAGS: int = re.IGNORECASE

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__)
        self._compiled = [(re.compile(p, self.FLAGS), score) for p, score in self.PATTERNS]

    def load(self) -> None:
        """Nothing to load: the expressions are compiled in the constructor."""

    def validate(self, value: str) -> bool:
        return True

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results = []
        for pattern, score in self._compiled:
            for match in pattern.finditer(text):
                start, end = match.span("value")
                value = text[start:end]
                if end > start and self.validate(value):
                    results.append(recognizer_result(self, self.ENTITY, start, end, score))
        return results


def key_phrase(words: str) -> str:
    """A key phrase followed by an optional "number/no/#/id" and "is/:"."""
    return (
        rf"\b(?:{words})(?:\s*(?:number|num|no\.?|nr\.?|#|id))?\s*(?:is|was|:|=|-|#)?\s*"
        r"(?:(?:is|was)\s+)?"
    )
