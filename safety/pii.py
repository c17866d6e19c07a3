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

import hashlib
import hmac
import logging
import re
import threading
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# What is scrubbed in this domain, and why each: README "Safety" has the table.
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

# spaCy labels the product uses; ORG, NORP, DATE and the rest are not personal data here
# (a date is taken only when it is a calendar date, by DateOfBirthRecognizer).
NER_MAPPING = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION"}
NER_IGNORED = (
    "ORG ORGANIZATION NORP FAC DATE TIME CARDINAL EVENT LANGUAGE LAW MONEY ORDINAL PERCENT "
    "PRODUCT QUANTITY WORK_OF_ART"
).split()

# Entities whose value is a number: "617-555-0134" and "(617) 555 0134" are one value.
_NUMERIC = {
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "US_BANK_NUMBER",
    "NPI",
    "IBAN_CODE",
}
# A "domain" with no scheme, no www and no path whose last label is a capitalised word:
# the end of one sentence and the start of the next, missing their space.
_SENTENCE_JOIN = re.compile(r"(?!www\.)[^\s/:@]+\.[A-Z][a-z]+")
PSEUDONYM = re.compile(r"<(?P<entity>[A-Z_]+):(?P<cipher>[A-Za-z0-9+/=_-]{16,})>")


class PIISettings(Protocol):
    spacy_model: str
    pii_score_threshold: float


class PIIConfigError(RuntimeError):
    """The PII engine cannot be built or used: scrubbing must fail closed, never be skipped."""


@dataclass(frozen=True)
class PIISpan:
    start: int
    end: int
    entity_type: str
    score: float


@dataclass
class PlaceholderMap:
    """Value -> ``<TYPE_n>`` for one conversation, safe to store: values are kept only as
    keyed digests (HMAC-SHA256), so the map reveals nothing without the key, and a guessed
    value cannot be confirmed against it either."""

    key: bytes
    digests: dict[str, str] = field(default_factory=dict)

    def digest(self, entity_type: str, value: str) -> str:
        normal = _normal_value(entity_type, value)
        return hmac.new(self.key, normal.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def get(self, entity_type: str, value: str) -> str | None:
        return self.digests.get(self.digest(entity_type, value))

    def add(self, entity_type: str, value: str, placeholder: str) -> None:
        self.digests.setdefault(self.digest(entity_type, value), placeholder)

    def placeholders(self) -> list[str]:
        return list(self.digests.values())

    def to_json(self) -> dict[str, str]:
        return dict(self.digests)


PlaceholderStore = MutableMapping[str, str] | PlaceholderMap


def _normal_value(entity_type: str, value: str) -> str:
    if entity_type in _NUMERIC:
        return re.sub(r"\W", "", value).casefold()
    return " ".join(value.split()).casefold()


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
            for part in _name_parts(value):
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


def _names_in_company(text: str, found: list[PIISpan], common: frozenset[str]) -> list[PIISpan]:
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


def _names_just_before(
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


_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _with_known_names(
    text: str, spans: list[PIISpan], mapping: PlaceholderStore, common: frozenset[str]
) -> list[PIISpan]:
    """``spans`` and every further word of ``text`` that is a name the mapping already holds.

    The NER model tags a name by its context, so it can find "Rosalind Quarrendon" in one
    message of a conversation and miss "Rosalind again: ..." in the next; once a name is known
    to be personal in a conversation (or a record), every later mention of it is too.
    """
    if not (mapping.digests if isinstance(mapping, PlaceholderMap) else mapping):
        return spans
    extra = []
    for match in _NAME_WORD.finditer(text):
        word = match.group()
        if len(word) < 3 or word.casefold() in common:
            continue
        for value in (word, word[:-2]) if word[-2:] in ("'s", "’s") else (word,):
            if isinstance(mapping, PlaceholderMap):
                known = mapping.get("PERSON", value)
            else:
                known = mapping.get(value)
            if known is not None and known.startswith("<PERSON_"):
                extra.append(PIISpan(match.start(), match.start() + len(value), "PERSON", 0.5))
                break
    if not extra:
        return spans
    chosen = list(spans)
    for span in extra:
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


# Field labels that are not English words.
_LABELS = {"re", "fwd", "fw", "cc", "bcc", "ps", "nb", "faq", "dob", "ssn", "mrn", "url"}


def _name_parts(name: str) -> list[str]:
    if " " not in name.strip():
        return []
    parts = re.findall(r"[^\W\d_][\w'-]{2,}", name)
    return [p for p in parts if p.casefold() not in _TITLE_WORDS]


# A courtesy title is part of a found name, but its other mentions are not names.
_TITLE_WORDS = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sr", "sra", "herr", "frau"}
_TITLE_WORDS |= {"mme", "mlle", "phd", "md"}


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
        with self._lock:
            results: list[Any] = self._analyzer.analyze(
                text=analysed,
                language="en",
                entities=self.entities,
                score_threshold=self.threshold,
            )
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
        results = [
            r
            for r in results
            if r.entity_type != "URL" or not _SENTENCE_JOIN.fullmatch(text[r.start : r.end])
        ]
        found = [PIISpan(r.start, r.end, r.entity_type, float(r.score)) for r in results]
        found = [s for s in found if text[s.start : s.end].strip()]
        found += _names_just_before(analysed, found, self._names, self._common)
        found += _names_in_company(analysed, found, self._common)
        found += _repeated_mentions(text, found)
        chosen: list[PIISpan] = []
        for span in sorted(found, key=lambda s: (-(s.end - s.start), -s.score)):
            if all(span.end <= c.start or span.start >= c.end for c in chosen):
                chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

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
        spans = _with_known_names(text, spans, mapping, self._common)

        def placeholder(entity: str, value: str) -> str:
            return _placeholder(mapping, entity, value)

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


def _recognizer(result: Any) -> str:
    return str((result.recognition_metadata or {}).get("recognizer_name", ""))


def _bind(placeholder: Any, entity: str) -> Any:
    return lambda value: placeholder(entity, value)


def _placeholder(mapping: PlaceholderStore, entity: str, value: str) -> str:
    if isinstance(mapping, PlaceholderMap):
        found = mapping.get(entity, value)
        taken = mapping.placeholders()
    else:
        found = mapping.get(value)
        taken = list(mapping.values())
    if found is None and entity == "PERSON":
        # "Eleanor" after "Eleanor Whitcombe" is the same person.
        for part in _name_parts(value) or [value]:
            part_found = (
                mapping.get(entity, part)
                if isinstance(mapping, PlaceholderMap)
                else mapping.get(part)
            )
            if part_found:
                found = part_found
                break
    if found is None:
        count = sum(1 for p in set(taken) if p.startswith(f"<{entity}_"))
        found = f"<{entity}_{count + 1}>"
    if isinstance(mapping, PlaceholderMap):
        mapping.add(entity, value, found)
        if entity == "PERSON":
            for part in _name_parts(value):
                mapping.add(entity, part, found)
    else:
        mapping.setdefault(value, found)
        if entity == "PERSON":
            for part in _name_parts(value):
                mapping.setdefault(part, found)
    return found


def reveal(text: str, key: bytes) -> str:
    """The originals back in a pseudonymised text; raises PIIConfigError on a wrong key."""
    from presidio_anonymizer.operators import AESCipher

    def decrypt(match: re.Match[str]) -> str:
        try:
            return str(AESCipher.decrypt(key, match.group("cipher")))
        except Exception as exc:  # the cipher raises ValueError or padding errors
            raise PIIConfigError("a pseudonym could not be decrypted with this key") from exc

    return PSEUDONYM.sub(decrypt, text)


def build_analyzer(spacy_model: str, domain_recognizers: bool = True) -> Any:
    """Presidio's analyzer with the recognizers chosen for this domain.

    ``domain_recognizers=False`` gives Presidio's defaults (all predefined recognizers and its
    usual NER mapping), the baseline that ``benchmarks/pii.py`` compares against.
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    if not domain_recognizers:
        provider = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": spacy_model}],
            }
        )
        return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        SpacyRecognizer,
        UsSsnRecognizer,
    )
    from presidio_analyzer.predefined_recognizers import (
        PhoneRecognizer as LibPhoneRecognizer,
    )

    from safety.recognizers import domain_recognizers as custom
    from safety.recognizers.urls import bounded_url_recognizer

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": spacy_model}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": NER_MAPPING,
                "labels_to_ignore": NER_IGNORED,
                "low_score_entity_names": [],
            },
        }
    )
    nlp_engine = provider.create_engine()
    registry = RecognizerRegistry(
        recognizers=[
            SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]),
            EmailRecognizer(),
            CreditCardRecognizer(),
            UsSsnRecognizer(),
            IbanRecognizer(),
            IpRecognizer(),
            bounded_url_recognizer(),
            LibPhoneRecognizer(),
            *custom(),
        ],
        supported_languages=["en"],
    )
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


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
