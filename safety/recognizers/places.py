"""Places: countries by name, and a capitalised name where a sentence says one lives or
travels."""

from __future__ import annotations

import re

from safety.recognizers.base import CAP_WORD, RegexRecognizer

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
        return value.split()[0].lower() not in NOT_PLACES


NOT_PLACES = {
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
