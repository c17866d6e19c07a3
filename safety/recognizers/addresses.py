"""Street addresses (with the lines that follow them) and postal codes."""

from __future__ import annotations

import re

from safety.recognizers.base import CAP_WORD, WORD, RegexRecognizer, key_phrase


class PostalCodeRecognizer(RegexRecognizer):
    ENTITY = "ADDRESS"
    PATTERNS = (
        (
            key_phrase(r"zip(?:\s*code)?|post(?:al)?\s*code|postcode")
            + r"(?P<value>\d{3,5}(?:[ -]\d{2,4})?(?:\s?[A-Z]{2}\b)?)",
            0.8,
        ),
    )


class StreetAddressRecognizer(RegexRecognizer):
    """A street address with what follows it on the next lines or after commas (unit, town,
    region, postal code, country), so that one placeholder covers the whole address."""

    ENTITY = "ADDRESS"
    FLAGS = 0
    SUFFIX = (
        r"(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|court|ct|way|place|pl|plaza|"
        r"boulevard|blvd|terrace|crescent|close|square|sq|highway|hwy|parkway|pkwy|circle|"
        r"trail|row|extensions?|forges?|gate|gardens|park|hill|view|heights|mews|walk|"
        r"u\.(?![A-Za-z]\.)|utca|út|ul\.|ulica|str\.|strasse|straße|weg|gasse|allee|platz|laan|straat|"
        r"plein|dreef|vej|gade|vei|veien|vegen|gata|gatan|väg|vägen|stigen|tie|katu)"
    )
    # Compound street names that end in a street word ("Puruntie", "Västerviksgatan").
    ENDING = (
        r"(?:tie|katu|kuja|gatan|gata|vägen|veien|vegen|stien|stigen|gade|vej|straße|strasse|"
        r"weg|gasse|laan|straat|plaats|dreef|platz|allee|utca|ova|ska|ská)"
    )
    PREFIX = (
        r"(?:rua|r\.|avenida|av\.|avda\.?|calle|c/|camino|camiño|carrer|via|viale|piazza|"
        r"corso|largo|travessa|praça|rue|chemin|place|boulevard|ul\.|ulica|al\.|aleja|"
        r"λεωφ\.|οδός|the corner of)"
    )
    # Street words that are not English words, so a number before them is enough.
    FOREIGN_PREFIX = (
        r"(?:rua|avenida|avda\.?|calle|camino|carrer|viale|piazza|corso|largo|travessa|praça|"
        r"rue|chemin|cours|ulica|ul\.|aleja)"
    )
    UNIT = r"(?:apt\.?|apartment|suite|ste\.?|unit|flat|floor|box|#)\s*\d+[A-Z]?"
    MILITARY = (
        r"(?:(?:PSC|Unit|USNS|USNV|USS|USCGC|CMR)\s+[\w-]+(?:,\s*Box\s+\d+)?\s*\n?\s*)?"
        r"(?:FPO|APO|DPO)\s+(?:AA|AE|AP)\s+\d{5}"
    )

    def __init__(self) -> None:
        words = rf"(?:{WORD}\s+){{0,4}}"
        number = r"\d{1,6}[A-Za-z]?"
        street = (
            rf"(?:{number}\s+)?(?:{number}\s+)?"
            rf"(?:(?i:{self.PREFIX})\s+(?:{WORD}\s+){{0,5}}?{number}"
            # "770 26 rue des Lieutenants Thomazo": the numbers before, none after.
            rf"|(?<=\d\s)(?i:{self.FOREIGN_PREFIX})\s+(?:{WORD}\s+){{0,4}}{WORD}"
            rf"|{words}(?:{WORD}(?i:{self.ENDING}))\b(?:\s+{number}\b)?"
            rf"|(?:{WORD}\s+){{0,4}}(?i:{self.SUFFIX})\b\.?(?:\s+{number}\b)?"
            rf"|(?<=\d\s){CAP_WORD}(?:\s+{CAP_WORD}){{0,3}}\s+{number}\b(?![ .-]?\d))"
        )
        # After a street: more parts separated by commas or new lines (town, region, postcode).
        # A postal code, but not the first group of a phone number on the next line.
        code = r"\d{3,6}(?:-\d{3,4}|\s\d{2})?\b(?![ .-]?\(?\d)"
        part = (
            rf"(?:(?i:{self.UNIT})|{code}|[A-Z]{{2}}\b(?:\s+{code})?|nan"
            rf"|{CAP_WORD}(?:\s+{CAP_WORD}){{0,3}}(?:\s+{code})?)"
        )
        tail = rf"(?:(?:\s*,\s*|\s*\n[\s>?]*|\s+(?=(?i:{self.UNIT})))(?:,\s*)?{part}){{0,6}}"
        self.PATTERNS = (
            (rf"(?P<value>(?i:{self.MILITARY}))", 0.85),
            (rf"(?P<value>\b(?:{street}){tail})", 0.7),
            (rf"(?P<value>\b(?i:{self.UNIT})(?:{tail}))", 0.5),
        )
        super().__init__()

    def validate(self, value: str) -> bool:
        # A street needs a number somewhere: "Anderson Street" alone is a place name that
        # the NER may or may not take; "3 tablets a day" has no street word.
        return bool(re.search(r"\d", value)) or bool(re.search(r"\n", value))
