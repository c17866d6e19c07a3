"""Personal-data detection with Presidio (spaCy NER + pattern recognizers) and scrubbing.

Scrubbed text carries typed placeholders (``<PERSON_1>``), numbered consistently within one
text or one conversation so that a reviewer can still follow who is who.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# Entities scrubbed in this domain. Dates in general are not personal data in medical and
# legal questions ("since 2019"), so DATE_TIME is left out; the rest identify people.
DEFAULT_ENTITIES = (
    "PERSON",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_BANK_NUMBER",
    "US_DRIVER_LICENSE",
    "US_PASSPORT",
    "IP_ADDRESS",
    "LOCATION",
    "MEDICAL_LICENSE",
    "URL",
)


class PIISettings(Protocol):
    spacy_model: str
    pii_score_threshold: float


class PIIConfigError(RuntimeError):
    """The PII engine cannot be built: scrubbing must fail closed, never be skipped."""


@dataclass(frozen=True)
class PIISpan:
    start: int
    end: int
    entity_type: str
    score: float


def _repeated_mentions(text: str, found: list[PIISpan]) -> list[PIISpan]:
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
            for part in re.findall(r"[A-Z][\w'-]{2,}", value):
                values.setdefault(part, span)
    extra = []
    for value, span in values.items():
        for match in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text):
            extra.append(PIISpan(match.start(), match.end(), span.entity_type, span.score))
    return extra


class PIIScrubber:
    """Finds personal data and replaces it with numbered typed placeholders."""

    def __init__(self, settings: PIISettings, entities: Sequence[str] = DEFAULT_ENTITIES) -> None:
        # tldextract (used by the URL recognizer) tries to download a suffix list and
        # logs a traceback when offline; its bundled snapshot is what it then uses.
        logging.getLogger("tldextract").setLevel(logging.CRITICAL)
        try:
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider

            provider = NlpEngineProvider(
                nlp_configuration={
                    "nlp_engine_name": "spacy",
                    "models": [{"lang_code": "en", "model_name": settings.spacy_model}],
                }
            )
            self._analyzer = AnalyzerEngine(
                nlp_engine=provider.create_engine(), supported_languages=["en"]
            )
        except (OSError, ImportError, ValueError) as exc:
            raise PIIConfigError(f"PII engine could not be built: {exc}") from exc
        self.entities = list(entities)
        self.threshold = settings.pii_score_threshold
        # spaCy pipelines are not guaranteed thread-safe; analysis is short, so serialise it.
        self._lock = threading.Lock()

    def detect(self, text: str) -> list[PIISpan]:
        """Non-overlapping findings, longest and most confident first wins."""
        if not text.strip():
            return []
        with self._lock:
            results: list[Any] = self._analyzer.analyze(
                text=text,
                language="en",
                entities=self.entities,
                score_threshold=self.threshold,
            )
        found = [PIISpan(r.start, r.end, r.entity_type, float(r.score)) for r in results]
        found += _repeated_mentions(text, found)
        chosen: list[PIISpan] = []
        for span in sorted(found, key=lambda s: (-(s.end - s.start), -s.score)):
            if all(span.end <= c.start or span.start >= c.end for c in chosen):
                chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

    def scrub(self, text: str, mapping: dict[str, str] | None = None) -> str:
        """``text`` with each finding replaced by ``<TYPE_n>``.

        ``mapping`` (original value -> placeholder) is updated in place; passing the same
        dict for every message of a conversation keeps the numbering consistent.
        """
        mapping = {} if mapping is None else mapping
        spans = self.detect(text)
        out = []
        position = 0
        for span in spans:
            value = text[span.start : span.end]
            placeholder = mapping.get(value)
            if placeholder is None:
                count = sum(1 for p in mapping.values() if p.startswith(f"<{span.entity_type}_"))
                placeholder = f"<{span.entity_type}_{count + 1}>"
                mapping[value] = placeholder
            out.append(text[position : span.start])
            out.append(placeholder)
            position = span.end
        out.append(text[position:])
        return "".join(out)
