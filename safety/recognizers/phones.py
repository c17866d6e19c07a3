"""Phone numbers in any country's layout."""

from __future__ import annotations

import re

from safety.recognizers.base import RegexRecognizer


class InternationalPhoneRecognizer(RegexRecognizer):
    """Phone numbers in any country's layout: 7-15 digits in groups, with a phone word before
    it or an international prefix; Presidio's own recognizer knows only a few regions."""

    ENTITY = "PHONE_NUMBER"
    GROUPS = r"(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]\(?\d{1,5}\)?){0,5}"
    # The same on one line: a list of contacts has one number a line.
    LINE_GROUPS = r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,12}(?:[ .-]\(?\d{1,6}\)?){0,5}"
    PATTERNS = (
        (
            r"\b(?:phone|tel|telephone|mobile|cell|fax|desk|office|call(?:ed)?|text|"
            r"reach|contact|number|messages?\s+to|whatsapp|sms|ring|registered|answering\s+at|"
            r"call\s+me\s+on)\b[^\d+(]{0,30}?"
            rf"(?P<value>(?:\+|\(|\b){GROUPS}(?:\s?(?:x|ext\.?)\s?\d{{1,5}})?)",
            0.75,
        ),
        (rf"(?P<value>\+\d{{1,3}}[\s.-]?{GROUPS})", 0.6),
        (r"(?P<value>(?:\(\d{2,4}\)\s?|\b\d{3}[-.])\d{3}[-.]\d{3,4}\b(?:\s?x\d{1,5})?)", 0.6),
        # A contact list: the number first, its kind after it ("455 6186 office",
        # "3660170548-Fax").
        (
            rf"(?:^|(?<=[\s,\\>]))(?P<value>(?:\b|(?=[+(])){LINE_GROUPS}(?:\s?(?:x|ext\.?)\s?\d{{1,5}})?)"
            r"(?:\s*-\s*|\s+)(?i:office|fax|mobile|cell|home|work|desk|tel|phone)\b",
            0.7,
        ),
    )

    def validate(self, value: str) -> bool:
        digits = re.sub(r"\D", "", value)
        return 7 <= len(digits) <= 16
