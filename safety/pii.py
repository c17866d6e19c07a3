"""Personal-data detection with Presidio (spaCy NER + pattern recognizers) and scrubbing.

Three ways to scrub, all through presidio-anonymizer:
- placeholders (``<PERSON_1>``), numbered consistently within a text or a conversation, for
  everything stored, logged or trained on;
- redaction (``<PERSON>``), when not even the numbering should survive;
- reversible pseudonyms (``<PERSON:...>``, AES with a key kept outside the database), for the
  admins who must see originals (:func:`reveal`).

Fail closed: an engine that cannot be built, or an entity no recognizer supports, raises
:class:`PIIConfigError`; nothing falls back to storing text unscrubbed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from safety.pii_conversation import PlaceholderStore, placeholder_for, with_known_names
from safety.pii_engine import build_analyzer
from safety.pii_names import names_in_company, names_just_before, repeated_mentions
from safety.pii_types import PIISpan

logger = logging.getLogger(__name__)

# What is scrubbed in this domain, and why each: docs/safety.md has the table.
DEFAULT_ENTITIES = (
    "PERSON",
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "US_BANK_NUMBER",
    "ADDRESS",
    "LOCATION",
    "DATE_TIME",
    "AGE",
    "IP_ADDRESS",
    "URL",
    "MEDICAL_RECORD_NUMBER",
    "HEALTH_PLAN_ID",
    "NPI",
    "US_DRIVER_LICENSE",
    "US_PASSPORT",
    "CASE_NUMBER",
)

# A "domain" with no scheme, no www and no path whose last label is a capitalised word:
# the end of one sentence and the start of the next, missing their space.
_SENTENCE_JOIN = re.compile(r"(?!www\.)[^\s/:@]+\.[A-Z][a-z]+")
PSEUDONYM = re.compile(r"<(?P<entity>[A-Z_]+):(?P<cipher>[A-Za-z0-9+/=_-]{16,})>")


class PIISettings(Protocol):
    spacy_model: str
    pii_score_threshold: float


class PIIConfigError(RuntimeError):
    """The PII engine cannot be built or used: scrubbing must fail closed, never be skipped."""


def load_key(path: Path | None, purpose: str, create: bool = False) -> bytes:
    """A secret key read from its own file (created with mode 0600 when ``create``)."""
    import secrets

    if path is None:
        raise PIIConfigError(f"no key file is configured for {purpose}")
    path = path.expanduser()
    if not path.is_file():
        if not create:
            raise PIIConfigError(f"the {purpose} key file {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    key = path.read_text().strip().encode("ascii")
    if len(key) not in (16, 24, 32):
        raise PIIConfigError(f"the {purpose} key in {path} must be 16, 24 or 32 characters")
    return key


class PIIScrubber:
    """Finds personal data and replaces it: placeholders, redaction or pseudonyms."""

    def __init__(
        self,
        settings: PIISettings,
        entities: Sequence[str] = DEFAULT_ENTITIES,
        *,
        domain_recognizers: bool = True,
    ) -> None:
        # tldextract (used by the URL recognizer) tries to download a suffix list and
        # logs a traceback when offline; its bundled snapshot is what it then uses.
        logging.getLogger("tldextract").setLevel(logging.CRITICAL)
        if not entities:
            raise PIIConfigError("the PII entity list is empty: nothing would be scrubbed")
        if not 0 <= settings.pii_score_threshold < 1:
            raise PIIConfigError("the PII score threshold must be in [0, 1)")
        try:
            self._analyzer = build_analyzer(settings.spacy_model, domain_recognizers)
            from presidio_anonymizer import AnonymizerEngine

            self._anonymizer = AnonymizerEngine()
        except (OSError, ImportError, ValueError) as exc:
            raise PIIConfigError(f"PII engine could not be built: {exc}") from exc
        supported = set(self._analyzer.get_supported_entities(language="en"))
        missing = sorted(set(entities) - supported)
        if missing:
            raise PIIConfigError(f"no recognizer for the PII entities {missing}")
        from safety.recognizers.name_lists import common_words, known_names, word_names

        self._names = known_names()
        self._common = common_words(self._analyzer.nlp_engine)
        self._word_names = word_names(self._analyzer.nlp_engine)
        self.entities = list(entities)
        self.threshold = settings.pii_score_threshold
        # spaCy pipelines are not guaranteed thread-safe; analysis is short, so serialise it.
        self._lock = threading.RLock()

    # ---- detection --------------------------------------------------------------------------
    def detect(self, text: str) -> list[PIISpan]:
        """Non-overlapping findings; the longest, then the most confident, wins."""
        if not text.strip():
            return []
        # All-lower-case text defeats the NER (and the capitalised patterns): analyse a copy
        # in which known names are capitalised; offsets do not move.
        analysed = self._recase(text) if text.islower() else text
        results = self._plausible(self._analyse(analysed), text, analysed)
        found = [PIISpan(r.start, r.end, r.entity_type, float(r.score)) for r in results]
        found = [s for s in found if text[s.start : s.end].strip()]
        found += names_just_before(analysed, found, self._names, self._common)
        found += names_in_company(analysed, found, self._common)
        found += repeated_mentions(text, found)
        return _longest_first(found)

    def _analyse(self, analysed: str) -> list[Any]:
        """Presidio's findings (its RecognizerResults) above the score threshold."""
        with self._lock:
            results: list[Any] = self._analyzer.analyze(
                text=analysed,
                language="en",
                entities=self.entities,
                score_threshold=self.threshold,
            )
        return results

    def _plausible(self, results: list[Any], text: str, analysed: str) -> list[Any]:
        """``results`` less the kinds of finding known to be mistakes."""
        if analysed is not text:
            # In lower-case text the NER takes words for names ("person", "world"); keep only
            # its findings that contain a re-cased name.
            results = [
                r
                for r in results
                if _recognizer(r) != "SpacyRecognizer"
                or analysed[r.start : r.end] != text[r.start : r.end]
            ]
        # The NER takes codes for places ("J45.909"); a name or a place has no digits.
        results = [
            r
            for r in results
            if _recognizer(r) != "SpacyRecognizer" or not re.search(r"\d", text[r.start : r.end])
        ]
        # A census name that is also an English word ("Princess", "Shadow", "Sunday") is a
        # name only when something else says so.
        results = [
            r
            for r in results
            if _recognizer(r) != "GivenNameRecognizer"
            or analysed[r.start : r.end].split()[0].casefold() not in self._word_names
        ]
        # Two sentences run together ("asthma.The cause") are not a web address.
        return [
            r
            for r in results
            if r.entity_type != "URL" or not _SENTENCE_JOIN.fullmatch(text[r.start : r.end])
        ]

    def _recase(self, text: str) -> str:
        def capitalise(match: re.Match[str]) -> str:
            word = match.group(0)
            if word in self._names and word not in self._common:
                title = word[:1].upper() + word[1:]
                return title if len(title) == len(word) else word
            return word

        return re.sub(r"[^\W\d_]{3,}", capitalise, text)

    # ---- operators --------------------------------------------------------------------------
    def scrub(
        self,
        text: str,
        mapping: PlaceholderStore | None = None,
        spans: list[PIISpan] | None = None,
    ) -> str:
        """``text`` with each finding replaced by ``<TYPE_n>``.

        ``mapping`` is updated in place; passing the same one for every message of a
        conversation keeps the numbering consistent. A :class:`PlaceholderMap` stores keyed
        digests and may be persisted; a plain dict maps raw values and must stay in memory.
        Names found in an earlier text with the same ``mapping`` are found again in this one,
        even where the NER model misses them here.
        """
        mapping = {} if mapping is None else mapping
        # ``spans``: this text's findings from an earlier detect() (one engine pass, not two).
        spans = self.detect(text) if spans is None else spans
        spans = with_known_names(text, spans, mapping, self._common)

        def placeholder(entity: str, value: str) -> str:
            return placeholder_for(mapping, entity, value)

        return self._apply(
            text, spans, lambda span: ("custom", {"lambda": _bind(placeholder, span.entity_type)})
        )

    def redact(self, text: str) -> str:
        """``text`` with each finding replaced by its bare type, ``<PERSON>``."""
        spans = self.detect(text)
        return self._apply(
            text, spans, lambda span: ("replace", {"new_value": f"<{span.entity_type}>"})
        )

    def pseudonymise(self, text: str, key: bytes) -> str:
        """``text`` with each finding encrypted in place (``<PERSON:...>``); :func:`reveal`
        with the same key gives the original back."""
        spans = self.detect(text)
        encrypted = self._apply(text, spans, lambda span: ("encrypt", {"key": key.decode()}))
        return encrypted

    def _apply(self, text: str, spans: list[PIISpan], operator: Any) -> str:
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        if not spans:
            return text
        out, position = [], 0
        # One span at a time keeps each operator's parameters tied to its own span.
        for span in spans:
            name, params = operator(span)
            result = self._anonymizer.anonymize(
                text=text[span.start : span.end],
                analyzer_results=[
                    RecognizerResult(span.entity_type, 0, span.end - span.start, span.score)
                ],
                operators={span.entity_type: OperatorConfig(name, params)},
            )
            value = result.text
            if name == "encrypt":
                value = f"<{span.entity_type}:{value}>"
            out.append(text[position : span.start])
            out.append(value)
            position = span.end
        out.append(text[position:])
        return "".join(out)


def _longest_first(found: list[PIISpan]) -> list[PIISpan]:
    """The spans that overlap no longer (or, as long, more confident) one, in text order."""
    chosen: list[PIISpan] = []
    for span in sorted(found, key=lambda s: (-(s.end - s.start), -s.score)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def _recognizer(result: Any) -> str:
    return str((result.recognition_metadata or {}).get("recognizer_name", ""))


def _bind(placeholder: Any, entity: str) -> Any:
    return lambda value: placeholder(entity, value)


def reveal(text: str, key: bytes) -> str:
    """The originals back in a pseudonymised text; raises PIIConfigError on a wrong key."""
    from presidio_anonymizer.operators import AESCipher

    def decrypt(match: re.Match[str]) -> str:
        try:
            return str(AESCipher.decrypt(key, match.group("cipher")))
        except Exception as exc:  # the cipher raises ValueError or padding errors
            raise PIIConfigError("a pseudonym could not be decrypted with this key") from exc

    return PSEUDONYM.sub(decrypt, text)


def scrub_example(scrubber: PIIScrubber, example: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset or export record with every string field scrubbed, one numbering for all of
    its fields (the person in ``input`` is the same ``<PERSON_1>`` in ``output``).

    The training package and every export call this; nothing is written unscrubbed.
    """
    mapping: dict[str, str] = {}
    return {
        key: scrubber.scrub(value, mapping) if isinstance(value, str) else value
        for key, value in example.items()
    }
