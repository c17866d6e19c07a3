"""Identifiers introduced by a key word: record, plan, provider, licence, passport, case,
account and card numbers."""

from __future__ import annotations

from safety.recognizers.base import RegexRecognizer, key_phrase

IDENT = r"(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,20}[A-Z0-9])\b"


class MedicalRecordNumberRecognizer(RegexRecognizer):
    ENTITY = "MEDICAL_RECORD_NUMBER"
    PATTERNS = (
        (
            key_phrase(r"MRN|medical\s+record|patient\s+(?:id|number)|chart\s+(?:number|no)")
            + IDENT,
            0.9,
        ),
    )


class HealthPlanIdRecognizer(RegexRecognizer):
    ENTITY = "HEALTH_PLAN_ID"
    PATTERNS = (
        (
            key_phrase(
                r"(?:health\s+plan|insurance|insurer|medicare|medicaid|policy|subscriber|"
                r"member(?:ship)?|beneficiary|group)(?:\s+(?:member|policy|plan))?"
                r"(?:\s+(?:id|number|no\.?|#))?"
            )
            + IDENT,
            0.85,
        ),
    )


class NpiRecognizer(RegexRecognizer):
    """US National Provider Identifier: ten digits with the Luhn check over prefix 80840."""

    ENTITY = "NPI"
    PATTERNS = (
        (key_phrase(r"NPI|national\s+provider(?:\s+identifier)?") + r"(?P<value>\d{10})\b", 0.9),
        (r"(?P<value>\b[12]\d{9}\b)", 0.3),
    )

    def validate(self, value: str) -> bool:
        return _luhn_ok("80840" + value)


class DriverLicenseRecognizer(RegexRecognizer):
    ENTITY = "US_DRIVER_LICENSE"
    PATTERNS = (
        (
            key_phrase(r"driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|DL|licen[cs]e")
            + r"(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{4,18}[A-Z0-9])\b",
            0.85,
        ),
    )


class PassportRecognizer(RegexRecognizer):
    ENTITY = "US_PASSPORT"
    PATTERNS = ((key_phrase(r"passport") + r"(?P<value>[A-Z]{0,2}\d{6,9}[A-Z]?)\b", 0.85),)


class CaseNumberRecognizer(RegexRecognizer):
    """Court case and docket numbers ("Case No. 1:21-cv-01234", "docket 2021-CV-0042")."""

    ENTITY = "CASE_NUMBER"
    PATTERNS = (
        (
            key_phrase(r"case|docket|civil\s+action|file|claim|index|cause")
            + r"(?P<value>(?=[\w:./-]*\d)[A-Z0-9][\w:./-]{3,24}[A-Z0-9])\b",
            0.85,
        ),
        # The federal court format is distinctive on its own.
        (r"(?P<value>\b\d:\d{2}-(?:cv|cr|mc|bk|md|mj)-\d{3,6}(?:-[A-Z]{2,4})*\b)", 0.9),
    )


class BankAccountRecognizer(RegexRecognizer):
    ENTITY = "US_BANK_NUMBER"
    PATTERNS = (
        (
            key_phrase(r"(?:bank\s+)?account|acct|routing|checking|savings")
            + r"(?P<value>\d[\d -]{6,20}\d)\b",
            0.8,
        ),
    )


class KeyedCardRecognizer(RegexRecognizer):
    """A card number introduced as one, even when its check digit is wrong (a typo is still
    personal data)."""

    ENTITY = "CREDIT_CARD"
    PATTERNS = (
        (
            r"\b(?:card|visa|mastercard|amex|maestro|discover)(?:\s+(?:number|num|no\.?|#))?"
            r"\s*(?:is|:)?\s*(?P<value>\d(?:[ -]?\d){11,18})\b",
            0.8,
        ),
    )


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
