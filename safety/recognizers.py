"""Presidio recognizers for this domain: identifiers introduced by a key, street addresses,
international phone numbers, titled names, places, calendar dates and ages.

Each is a small class. Presidio's own recognizers cover emails, cards, SSNs, IBANs, IPs and
URLs; spaCy's NER covers names and places. These add what the defaults miss in medical and
legal questions (the figures are in README "Safety").
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

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


def _result(
    recognizer: EntityRecognizer, entity: str, start: int, end: int, score: float
) -> RecognizerResult:
    return RecognizerResult(
        entity_type=entity,
        start=start,
        end=end,
        score=score,
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
                    results.append(_result(self, self.ENTITY, start, end, score))
        return results


def _key(words: str) -> str:
    """A key phrase followed by an optional "number/no/#/id" and "is/:"."""
    return (
        rf"\b(?:{words})(?:\s*(?:number|num|no\.?|nr\.?|#|id))?\s*(?:is|was|:|=|-|#)?\s*"
        r"(?:(?:is|was)\s+)?"
    )


IDENT = r"(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{3,20}[A-Z0-9])\b"


class MedicalRecordNumberRecognizer(RegexRecognizer):
    ENTITY = "MEDICAL_RECORD_NUMBER"
    PATTERNS = (
        (_key(r"MRN|medical\s+record|patient\s+(?:id|number)|chart\s+(?:number|no)") + IDENT, 0.9),
    )


class HealthPlanIdRecognizer(RegexRecognizer):
    ENTITY = "HEALTH_PLAN_ID"
    PATTERNS = (
        (
            _key(
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
        (_key(r"NPI|national\s+provider(?:\s+identifier)?") + r"(?P<value>\d{10})\b", 0.9),
        (r"(?P<value>\b[12]\d{9}\b)", 0.3),
    )

    def validate(self, value: str) -> bool:
        return _luhn_ok("80840" + value)


class DriverLicenseRecognizer(RegexRecognizer):
    ENTITY = "US_DRIVER_LICENSE"
    PATTERNS = (
        (
            _key(r"driver'?s?\s+licen[cs]e|driving\s+licen[cs]e|DL|licen[cs]e")
            + r"(?P<value>(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{4,18}[A-Z0-9])\b",
            0.85,
        ),
    )


class PassportRecognizer(RegexRecognizer):
    ENTITY = "US_PASSPORT"
    PATTERNS = ((_key(r"passport") + r"(?P<value>[A-Z]{0,2}\d{6,9}[A-Z]?)\b", 0.85),)


class CaseNumberRecognizer(RegexRecognizer):
    """Court case and docket numbers ("Case No. 1:21-cv-01234", "docket 2021-CV-0042")."""

    ENTITY = "CASE_NUMBER"
    PATTERNS = (
        (
            _key(r"case|docket|civil\s+action|file|claim|index|cause")
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
            _key(r"(?:bank\s+)?account|acct|routing|checking|savings")
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


class PostalCodeRecognizer(RegexRecognizer):
    ENTITY = "ADDRESS"
    PATTERNS = (
        (
            _key(r"zip(?:\s*code)?|post(?:al)?\s*code|postcode")
            + r"(?P<value>\d{3,5}(?:[ -]\d{2,4})?(?:\s?[A-Z]{2}\b)?)",
            0.8,
        ),
    )


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


# Countries and a few large regions by name: the NER misses many, in lower case above all.
# Names that are also common words or first names are matched only capitalised.
COUNTRIES = (
    "Afghanistan Albania Algeria Andorra Angola Argentina Armenia Australia Austria Azerbaijan "
    "Bahamas Bahrain Bangladesh Barbados Belarus Belgium Belize Benin Bhutan Bolivia Bosnia "
    "Botswana Brazil Brunei Bulgaria Burkina Burundi Cambodia Cameroon Canada Chile Colombia "
    "Comoros Congo Croatia Cuba Cyprus Czechia Denmark Djibouti Dominica Ecuador Egypt Eritrea "
    "Estonia Eswatini Ethiopia Fiji Finland France Gabon Gambia Germany Ghana Greece Grenada "
    "Guatemala Guyana Haiti Honduras Hungary Iceland India Indonesia Iran Iraq Ireland Israel "
    "Italy Jamaica Japan Kazakhstan Kenya Kiribati Kosovo Kuwait Kyrgyzstan Laos Latvia Lebanon "
    "Lesotho Liberia Libya Liechtenstein Lithuania Luxembourg Madagascar Malawi Malaysia "
    "Maldives Mali Malta Mauritania Mauritius Mexico Micronesia Moldova Monaco Mongolia "
    "Montenegro Morocco Mozambique Myanmar Namibia Nauru Nepal Netherlands Nicaragua Nigeria "
    "Norway Oman Pakistan Palau Palestine Panama Paraguay Peru Philippines Poland Portugal "
    "Qatar Romania Russia Rwanda Samoa Senegal Serbia Seychelles Singapore Slovakia Slovenia "
    "Somalia Spain Sudan Suriname Sweden Switzerland Syria Taiwan Tajikistan Tanzania Thailand "
    "Togo Tonga Tunisia Turkmenistan Tuvalu Uganda Ukraine Uruguay Uzbekistan Vanuatu "
    "Venezuela Vietnam Yemen Zambia Zimbabwe England Scotland Wales Greenland"
).split()
MULTIWORD_COUNTRIES = (
    "United States",
    "United States of America",
    "United Kingdom",
    "Czech Republic",
    "South Africa",
    "New Zealand",
    "Saudi Arabia",
    "Sri Lanka",
    "Costa Rica",
    "El Salvador",
    "Sierra Leone",
    "South Korea",
    "North Korea",
    "Dominican Republic",
    "Antigua and Barbuda",
    "Trinidad and Tobago",
    "Papua New Guinea",
    "United Arab Emirates",
    "Ivory Coast",
    "Hong Kong",
    "Puerto Rico",
    "Northern Ireland",
    "Bosnia and Herzegovina",
    "North Macedonia",
    "Cape Verde",
    "Equatorial Guinea",
    "Marshall Islands",
    "Solomon Islands",
)
CAPITALISED_ONLY = ("Chad", "Georgia", "Jordan", "Turkey", "China", "Guinea", "Niger", "Mali")


class CountryRecognizer(RegexRecognizer):
    ENTITY = "LOCATION"
    FLAGS = 0

    def __init__(self) -> None:
        anycase = "|".join(
            sorted((re.escape(n) for n in (*COUNTRIES, *MULTIWORD_COUNTRIES)), key=len)[::-1]
        )
        capitalised = "|".join(CAPITALISED_ONLY)
        self.PATTERNS = (
            (rf"(?P<value>\b(?i:{anycase})\b)", 0.6),
            (rf"(?P<value>\b(?:{capitalised})\b)", 0.6),
        )
        super().__init__()


class PlaceInContextRecognizer(RegexRecognizer):
    """A capitalised name after "live(s) in", "moved here from", "flew to", "I'm in" ..."""

    ENTITY = "LOCATION"
    FLAGS = 0
    LEAD = (
        r"(?i:(?:live[sd]?|living|lived|reside[sd]?|born|grew\s+up|moved(?:\s+here)?|"
        r"relocated|flew|travel(?:l?ed|l?ing)?|staying|based|located|originally|"
        r"returned|i'?m|i\s+am|we\s+are|trip|year|office|arrived|coming|going|visit(?:ed|ing)?)"
        r"(?:\s+\w+){0,2}?\s+(?:in|from|to|at|near)|\bwhere:|home\s+city|\bcity\s+of)"
    )

    def __init__(self) -> None:
        self.PATTERNS = (
            (
                rf"{self.LEAD}\s+(?P<value>{CAP_WORD}(?:[\s-](?:de\s+|del\s+|da\s+)?{CAP_WORD})"
                rf"{{0,2}})",
                0.55,
            ),
        )
        super().__init__()

    def validate(self, value: str) -> bool:
        return value.split()[0].lower() not in _NOT_PLACES


_NOT_PLACES = {
    "the",
    "a",
    "an",
    "my",
    "our",
    "his",
    "her",
    "their",
    "this",
    "that",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "pain",
    "hospital",
    "school",
    "work",
    "english",
}


# Courtesy titles; with the name they are one finding ("Dr. Kyle Kuefer" -> "<PERSON_1>").
TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sra|Herr|Frau|Mme|Mlle)"


class TitledNameRecognizer(RegexRecognizer):
    """Names after a courtesy title or an introduction ("Dr. Kyle Kuefer", "my name is ...",
    "call me Csanád", "my son Tadzio", "Hi Torben")."""

    ENTITY = "PERSON"
    FLAGS = 0
    NAME = rf"{CAP_WORD}(?:\s+(?:[A-Z]\.|{CAP_WORD})){{0,3}}"
    INTRODUCTION = (
        r"(?:(?:my|his|her|their|your|the)\s+)?(?:(?:last|first|full|maiden|middle|family|given|"
        r"sur)\s*)?name\s*(?:is|was|:|\?)|i\s+am|i'm|this\s+is|called|named|call(?:s|ed)?\s+me|"
        r"patient|client|signed|regards,|sincerely,|thanks,|hi|hello|dear|hey|says|said|"
        r"(?:my|our|his|her)\s+(?:son|daughter|kid|child|wife|husband|partner|mother|father|mom|"
        r"mum|dad|brother|sister|grandmother|grandfather|grandson|granddaughter|aunt|uncle|"
        r"cousin|niece|nephew|friend|neighbou?r|boss|colleague|fianc[ée]e?|boyfriend|girlfriend)"
    )

    def __init__(self) -> None:
        self.PATTERNS = (
            (rf"(?P<value>\b{TITLES}\.?\s+{self.NAME})", 0.75),
            # Lower-case text: the title needs its dot (the name is re-cased when known).
            (rf"(?P<value>\b(?i:{TITLES})\.\s+{self.NAME})", 0.7),
            # Above GivenNameRecognizer's score: Presidio keeps one of two equal spans.
            (rf"(?i:\b(?:{self.INTRODUCTION}))[ \t]+(?P<value>{self.NAME})", 0.65),
        )
        super().__init__()

    def validate(self, value: str) -> bool:
        words = re.sub(rf"^(?i:{TITLES})\.?\s+", "", value).split()
        return bool(words) and words[0].lower().rstrip(".,") not in _NOT_NAMES


_NOT_NAMES = _NOT_PLACES | {
    "i",
    "not",
    "very",
    "so",
    "worried",
    "pregnant",
    "diabetic",
    "dr",
    "doctor",
    "in",
    "at",
    "on",
    "from",
    "sir",
    "madam",
    "team",
    "all",
    "everyone",
    "there",
    "again",
    "good",
    "thank",
    "thanks",
    "please",
    "is",
    "was",
}


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# A URL is one word; its host has at most 127 labels and 253 characters, a usable one far
# fewer. Longer or dottier words are not looked at.
MAX_URL_CHARS = 512
MAX_URL_DOTS = 32


def bounded_url_recognizer() -> EntityRecognizer:
    """Presidio's URL recognizer, run word by word on the words that can be URLs.

    Its pattern scans up to 253 host characters from every position and tries some 1,500
    top-level domains at each dot: on "a." repeated 2,000 times that was 2.8 s (0.7 ms a
    character) under the analyzer's lock, during which no other request's text could be
    scrubbed. Run on words of at most MAX_URL_CHARS characters and MAX_URL_DOTS dots, its
    work per word is bounded, and a text's is linear in its length.
    """
    from presidio_analyzer.predefined_recognizers import UrlRecognizer

    class BoundedUrlRecognizer(UrlRecognizer):  # type: ignore[misc]
        def analyze(
            self,
            text: str,
            entities: list[str],
            nlp_artifacts: NlpArtifacts | None = None,
            regex_flags: int | None = None,
        ) -> list[RecognizerResult]:
            results: list[RecognizerResult] = []
            for word in re.finditer(r"\S+", text):
                candidate = word.group()
                if "." not in candidate or len(candidate) > MAX_URL_CHARS:
                    continue
                if candidate.count(".") > MAX_URL_DOTS:
                    continue
                for result in super().analyze(candidate, entities, None, regex_flags):
                    result.start += word.start()
                    result.end += word.start()
                    results.append(result)
            return results

    return BoundedUrlRecognizer()  # type: ignore[no-any-return]


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


# Given names that are also ordinary English words (or body parts, months): never taken alone.
_AMBIGUOUS_FIRST_NAMES = {
    "may",
    "june",
    "april",
    "august",
    "will",
    "grace",
    "hope",
    "faith",
    "joy",
    "sunny",
    "crystal",
    "amber",
    "ruby",
    "pearl",
    "iris",
    "rose",
    "lily",
    "dawn",
    "summer",
    "autumn",
    "page",
    "bill",
    "pat",
    "sue",
    "mark",
    "art",
    "gene",
    "major",
    "van",
    "royal",
    "king",
    "chance",
    "guy",
    "don",
    "ray",
    "wade",
    "an",
    "in",
    "so",
    "long",
    "young",
    "else",
    "rich",
    "sage",
    "storm",
    "star",
    "sky",
    "river",
    "golden",
    "miles",
    "max",
    "jack",
    "frank",
    "harry",
    "jean",
    "ivy",
    "holly",
    "olive",
    "violet",
    "jewel",
    "precious",
    "angel",
    "china",
    "dusty",
    "rusty",
    "lane",
    "drew",
    "carol",
    "eve",
    "ma",
    "la",
    "le",
    "de",
    "do",
    "my",
    "the",
    "son",
    "man",
    "sir",
    "lord",
    "love",
    "care",
    "cure",
    "penny",
    "nova",
}


class GivenNameRecognizer(EntityRecognizer):
    """A capitalised proper noun that is a known given name, with the proper nouns after it
    (the surname): the small NER model misses many names, above all short ones."""

    ENTITY = "PERSON"

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__)

    def load(self) -> None:
        self.first_names = _given_names() - _AMBIGUOUS_FIRST_NAMES
        self.surnames = _surnames() - _COMMON_SURNAME_WORDS - _AMBIGUOUS_FIRST_NAMES

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if nlp_artifacts is None or not self.first_names:
            return []
        tokens = list(nlp_artifacts.tokens)
        results = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            lower = token.text.lower()
            if (
                token.is_title
                and token.pos_ == "PROPN"
                and (
                    lower in self.first_names
                    # A surname alone only inside a sentence: at its start, a capital says
                    # nothing.
                    or (lower in self.surnames and not token.is_sent_start and len(lower) > 3)
                )
            ):
                end = i
                while (
                    end + 1 < len(tokens)
                    and end - i < 3
                    and tokens[end + 1].pos_ == "PROPN"
                    and (tokens[end + 1].is_title or tokens[end + 1].text[:1].isupper())
                    and tokens[end + 1].whitespace_ is not None
                    and not tokens[end].text.endswith("\n")
                ):
                    end += 1
                start_char = token.idx
                end_char = tokens[end].idx + len(tokens[end].text)
                if not self._names_something_else(tokens, i, end):
                    results.append(_result(self, self.ENTITY, start_char, end_char, 0.6))
                i = end + 1
            else:
                i += 1
        return results

    @staticmethod
    def _names_something_else(tokens: list[Any], first: int, last: int) -> bool:
        """ "Parkinson's disease", "Lynch syndrome", "the Civil Rights Act": an eponym or a
        named thing, not a person."""
        following = [t.text.lower() for t in tokens[last + 1 : last + 3]]
        if following[:1] == ["'s"]:
            following = following[1:]
        words = [t.text.lower() for t in tokens[first : last + 1]] + following[:1]
        return any(w in _NAMED_THINGS for w in words)


# Words after which a capitalised name is a disease, a law, a place or an organisation.
_NAMED_THINGS = set(
    """
    disease diseases syndrome syndromes disorder palsy sign test tumor tumour tumors anemia
    anaemia ataxia dystrophy sarcoma lymphoma dementia procedure maneuver manoeuvre
    scale score criteria classification law laws act acts code rule rules amendment
    clause agreement treaty doctrine court inc ltd llc corp corporation company co
    group bank foundation institute institution center centre clinic hospital
    university college school association society orchestra street road avenue
    """.split()
)


def _given_names(top: int | None = None) -> set[str]:
    """US census given names (the ``names`` package ships the lists as data files, most
    frequent first); ``top``: only the first so many of each list."""
    from importlib.resources import files

    found: set[str] = set()
    for name in ("dist.female.first", "dist.male.first"):
        resource = files("names").joinpath(name)
        lines = [line for line in resource.read_text(encoding="utf-8").splitlines() if line.strip()]
        found.update(line.split()[0].lower() for line in lines[:top])
    return found


def _surnames(top: int | None = None) -> set[str]:
    from importlib.resources import files

    text = files("names").joinpath("dist.all.last").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    return {line.split()[0].lower() for line in lines[:top]}


def known_names() -> frozenset[str]:
    """Given names and surnames (lower case) and country names, for re-casing lower-case text."""
    found = set(_given_names()) | _surnames()
    found.update(n.lower() for n in COUNTRIES)
    return frozenset(found)


def english_words(nlp_engine: Any) -> frozenset[str]:
    """English lemmas (lower case) from the spaCy lemmatizer's word lists (WordNet), less the
    country names; empty when the pipeline has no such lists."""
    try:
        lookups = nlp_engine.nlp["en"].get_pipe("lemmatizer").lookups
    except (AttributeError, KeyError, ValueError):
        return frozenset()
    lemmas: set[str] = set()
    # lemma_index: part of speech -> lemmas; lemma_exc: part of speech -> {irregular form: ...}.
    for table in ("lemma_index", "lemma_exc"):
        if table in lookups.tables:
            for entries in lookups.get_table(table).values():
                lemmas.update(e for e in entries if e.isalpha())
    return frozenset(lemmas - {c.lower() for c in COUNTRIES})


def common_words(nlp_engine: Any) -> frozenset[str]:
    """English words that are also names ("will", "young", "price", "credit"): never re-cased.

    The census surname list holds tens of thousands of everyday words ("payment", "person",
    "music"); the spaCy lemmatizer's word lists name them. A frequent given name stays a name
    even when it is also a word ("kelly", "jordan").
    """
    words = set(_AMBIGUOUS_FIRST_NAMES)
    words.update(_COMMON_SURNAME_WORDS)
    with contextlib.suppress(AttributeError, KeyError):
        words.update(nlp_engine.nlp["en"].Defaults.stop_words)
    frequent = _given_names(top=_FREQUENT_NAMES)
    for lemma in english_words(nlp_engine):
        forms = {lemma, lemma + "s", lemma + "es", lemma + "ed", lemma + "d", lemma + "ing"}
        words.update(f for f in forms if f not in frequent)
    return frozenset(words - {c.lower() for c in COUNTRIES})


def word_names(nlp_engine: Any) -> frozenset[str]:
    """English words that are census names but not frequent ones ("princess", "shadow",
    "sunday"): alone, such a word is taken for a name only when something else says so."""
    frequent = _given_names(top=_FREQUENT_NAMES) | _surnames(top=_FREQUENT_NAMES)
    return english_words(nlp_engine) - frequent


# How many of the most frequent census names (each list) are names before words.
_FREQUENT_NAMES = 1000


# Census surnames that are everyday words; a lower-case "call" or "price" is not a name.
_COMMON_SURNAME_WORDS = set(
    """
    key reed young white black brown green gray grey hall price cash rich long short
    little small large best good hill wood woods stone rock field fields king lord bishop
    pope major love hope joy bell bells call page post mark bill will may june april
    day night morning summer winter spring snow rain storm frost wind sun moon star
    house home street lane way road park bank banks case cook baker miller hunter fisher
    carpenter mason porter turner walker singer taylor fox wolf bird crane swan lamb
    bull hart deer lion fish rose lily iris ivy holly daisy heather violet olive
    cherry berry apple orange lemon sugar salt pepper honey rice bean beans wheat
    more most less ill sick well cure care hurt pain head heart hand hands foot feet
    back side arm leg bone blood skin hair brain lung lungs liver kidney doctor nurse
    parent child baby son sons mother father brother sister wife husband friend
    free law lawyer judge court counsel sue rule rules trust lease sale sales cost
    meet meets met take takes made make pay paid can cannot should would could must
    number phone call calls money card cards account address name names email mail
    says said tell told ask asked worried pregnant diabetes cancer asthma tablet dose
    """.split()
)
