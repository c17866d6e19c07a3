"""Presidio's analyzer as this domain builds it: spaCy's NER and the chosen recognizers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# spaCy labels the product uses; ORG, NORP, DATE and the rest are not personal data here
# (a date is taken only when it is a calendar date, by DateOfBirthRecognizer).
NER_MAPPING = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION"}
NER_IGNORED = (
    "ORG ORGANIZATION NORP FAC DATE TIME CARDINAL EVENT LANGUAGE LAW MONEY ORDINAL PERCENT "
    "PRODUCT QUANTITY WORK_OF_ART"
).split()


def build_analyzer(spacy_model: str, domain_recognizers: bool = True) -> Any:
    """Presidio's analyzer with the recognizers chosen for this domain.

    ``domain_recognizers=False`` gives Presidio's defaults (all predefined recognizers and its
    usual NER mapping), the baseline that ``benchmarks/pii.py`` compares against.
    """
    from presidio_analyzer import AnalyzerEngine

    if not domain_recognizers:
        return AnalyzerEngine(nlp_engine=_nlp_engine(spacy_model), supported_languages=["en"])
    nlp_engine = _nlp_engine(
        spacy_model,
        {
            "model_to_presidio_entity_mapping": NER_MAPPING,
            "labels_to_ignore": NER_IGNORED,
            "low_score_entity_names": [],
        },
    )
    return AnalyzerEngine(
        registry=_domain_registry(), nlp_engine=nlp_engine, supported_languages=["en"]
    )


def _nlp_engine(spacy_model: str, ner: Mapping[str, Any] | None = None) -> Any:
    """spaCy with ``spacy_model``; ``ner`` maps its labels to Presidio's (None: Presidio's
    usual mapping)."""
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    configuration: dict[str, Any] = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": spacy_model}],
    }
    if ner is not None:
        configuration["ner_model_configuration"] = ner
    return NlpEngineProvider(nlp_configuration=configuration).create_engine()


def _domain_registry() -> Any:
    """The Presidio recognizers this domain keeps, and its own (``safety.recognizers``)."""
    from presidio_analyzer import RecognizerRegistry
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

    from safety.recognizers import domain_recognizers
    from safety.recognizers.urls import bounded_url_recognizer

    return RecognizerRegistry(
        recognizers=[
            SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]),
            EmailRecognizer(),
            CreditCardRecognizer(),
            UsSsnRecognizer(),
            IbanRecognizer(),
            IpRecognizer(),
            bounded_url_recognizer(),
            LibPhoneRecognizer(),
            *domain_recognizers(),
        ],
        supported_languages=["en"],
    )
