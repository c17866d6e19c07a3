"""Presidio recognizers for this domain: identifiers introduced by a key, street addresses,
international phone numbers, titled names, places, calendar dates and ages.

Each is a small class, in one module per kind of entity (``identifiers``, ``addresses``,
``phones``, ``dates``, ``places``, ``names``); ``base`` holds what they share, ``name_lists``
the census names and English words, ``urls`` Presidio's URL recognizer made linear.
Presidio's own recognizers cover emails, cards, SSNs, IBANs, IPs and URLs; spaCy's NER
covers names and places. These add what the defaults miss in medical and
legal questions (the figures are in docs/safety.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from presidio_analyzer import EntityRecognizer

from safety.recognizers.addresses import PostalCodeRecognizer, StreetAddressRecognizer
from safety.recognizers.base import RegexRecognizer
from safety.recognizers.dates import AgeRecognizer, DateOfBirthRecognizer
from safety.recognizers.identifiers import (
    BankAccountRecognizer,
    CaseNumberRecognizer,
    DriverLicenseRecognizer,
    HealthPlanIdRecognizer,
    KeyedCardRecognizer,
    MedicalRecordNumberRecognizer,
    NpiRecognizer,
    PassportRecognizer,
)
from safety.recognizers.names import GivenNameRecognizer, TitledNameRecognizer
from safety.recognizers.phones import InternationalPhoneRecognizer
from safety.recognizers.places import CountryRecognizer, PlaceInContextRecognizer


def domain_recognizers() -> list[EntityRecognizer]:
    """The custom recognizers, one instance each."""
    classes: Iterable[type[RegexRecognizer]] = (
        MedicalRecordNumberRecognizer,
        HealthPlanIdRecognizer,
        NpiRecognizer,
        DriverLicenseRecognizer,
        PassportRecognizer,
        CaseNumberRecognizer,
        BankAccountRecognizer,
        KeyedCardRecognizer,
        PostalCodeRecognizer,
        DateOfBirthRecognizer,
        AgeRecognizer,
        StreetAddressRecognizer,
        InternationalPhoneRecognizer,
        CountryRecognizer,
        PlaceInContextRecognizer,
        TitledNameRecognizer,
    )
    return [*(cls() for cls in classes), GivenNameRecognizer()]


def recognizer_names(recognizers: Iterable[Any]) -> list[str]:
    return [r.name for r in recognizers]
