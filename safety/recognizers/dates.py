"""Calendar dates (with a day) and ages."""

from __future__ import annotations

from safety.recognizers.base import RegexRecognizer


class DateOfBirthRecognizer(RegexRecognizer):
    """Calendar dates (with a day). A bare year or weekday identifies no one; a full date,
    in a question about a person, often is a birth, admission or death date."""

    ENTITY = "DATE_TIME"
    MONTHS = (
        r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
        r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
    )
    PATTERNS = (
        (
            r"(?P<value>\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?\b)",
            0.6,
        ),
        (r"(?P<value>(?<![\d/.-])\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})\b)(?![/.-]?\d)", 0.6),
        (rf"(?P<value>\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTHS},?\s+\d{{4}}\b)", 0.6),
        (rf"(?P<value>\b{MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b)", 0.6),
        (
            r"\b(?:born|birth\s*date|date\s+of\s+birth|d\.?o\.?b\.?|birthday)\b[^\n\d]{0,20}"
            r"(?P<value>\d{4})\b",
            0.6,
        ),
    )


class AgeRecognizer(RegexRecognizer):
    """A person's age ("a 79 year old", "aged 52", "I'll turn 23"): only the number."""

    ENTITY = "AGE"
    PATTERNS = (
        (r"(?P<value>\b\d{1,3})(?:\s*|-)(?:years?|yrs?|y)(?:\s*|-)(?:/\s*)?o(?:ld|\.?\b)", 0.7),
        (r"\b(?:aged?|age\s+of|age:)\s*(?P<value>\d{1,3})\b", 0.7),
        (r"\b(?:turn(?:ed|ing|s)?|will\s+be)\s+(?P<value>\d{1,3})\b(?!\s*(?:%|mg|ml|times))", 0.6),
        (r"\bI'?\s*a?m\s+(?P<value>\d{1,3})\b(?=\s*(?:[,.!?]|$|and|years|yo|y/o))", 0.6),
    )

    def validate(self, value: str) -> bool:
        return 0 < int(value) < 125
