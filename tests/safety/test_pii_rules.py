"""The detection rules added for names, phone numbers and lower-case text, and what they must
leave alone: doses, counts, years, sections, amounts and codes in ordinary questions."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _found(scrubber, text: str) -> set[tuple[str, str]]:
    return {(text[s.start : s.end], s.entity_type) for s in scrubber.detect(text)}


@pytest.mark.parametrize(
    "text",
    [
        "Take 500 mg twice a day, 3 tablets since 2019.",
        "Is 1000 mg of metformin twice a day too much for a 70 kg adult?",
        "Under Section 12.3 of the lease, can the landlord keep $2,500 of the deposit?",
        "Section 4.2(b) and Article 50 apply to claims over $10,000.",
        "The ICD-10 code is E11.9; the other was I10 and J45.909.",
        "My doctor said 120/80 is normal; I take 25 mg at 8:30 and 20 mg at 21:00.",
        "Patient takes 5 mg warfarin daily, INR 2.5, 3 times a week, 1,200 calories.",
        "We have 3 children and 2 dogs, and paid 4500 dollars in 2021.",
        "Can I sue under 42 U.S.C. 1983 and Rule 12(b)(6)?",
        "take 2 tablets of 500 mg at home and 1250 mg at work",
        "could i change the payment due date of my credit card?",
        "is a very sympathetic person needed for the music therapy?",
        "Should I take Tylenol or Advil for a fever?",
        "On the last Sunday before Labor Day the Princess Royal visited.",
        "Note: Section 12.3 applies to the tenant.",
        "Traceback (most recent call last):\nValueError: bad input",
    ],
)
def test_ordinary_questions_are_not_scrubbed(shared_models, text: str) -> None:
    assert shared_models.scrubber.scrub(text) == text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "Lara Pottinger\n3247 Rua Igreja 25\n Portugal 30971\n21 253 109 8211-Office",
            "21 253 109 8211",
        ),
        ("Justin Molnar\n12 Gralla 30 Suite 617, HELSINKI 00336\n455 6186 office", "455 6186"),
        ("Harry Sheppard\n085 175 7641-Office\\,3660170548-Fax", "3660170548"),
        (
            "Terry Cardoso\nEritrea 92707\n0910-5877671-Office\\,(311)905-4466x8827-Fax",
            "(311)905-4466x8827",
        ),
    ],
)
def test_phone_numbers_labelled_after_them(shared_models, text: str, value: str) -> None:
    assert (value, "PHONE_NUMBER") in _found(shared_models.scrubber, text)


def test_a_postal_code_or_a_date_does_not_take_a_phone_number(shared_models) -> None:
    text = "Debra Neal\n3536 1659 Hoog St\n Apt. 839\n South Africa 70651\n082 490 1693-Office"
    found = _found(shared_models.scrubber, text)
    assert ("082 490 1693", "PHONE_NUMBER") in found
    text = "Selina Eldarkhanov\n30102 Kaevu 94\n28-64-66-98 office\n930.167.3943 fax"
    found = _found(shared_models.scrubber, text)
    assert ("28-64-66-98", "PHONE_NUMBER") in found and ("930.167.3943", "PHONE_NUMBER") in found


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("What's your last name? Boyle", "Boyle"),
        ("She was born in May. Her maiden name is Pinto", "Pinto"),
        ("Sometimes people call me Csanád", "Csanád"),
        ("I would like to remove my kid Tadzio from the will.", "Tadzio"),
        ("Hi Torben, I have a question about my lease.", "Torben"),
        ("Mr. Ford is a 50 year old man with chest pain.", "Mr. Ford"),
        ("mr. martin is a 50 year old man with a cough.", "mr. martin"),
        ("The founders were Monjeau, Graves and Reed.", "Monjeau"),
        ("Is there a better song? Marrero and Murphy were precision engineers.", "Marrero"),
        ("Halldór: What a wife.\nMatthew: Remember me?", "Halldór"),
    ],
)
def test_names_from_their_context(shared_models, text: str, value: str) -> None:
    assert (value, "PERSON") in _found(shared_models.scrubber, text)


def test_a_title_is_replaced_with_the_name_but_not_elsewhere(shared_models) -> None:
    mapping: dict[str, str] = {}
    scrubbed = shared_models.scrubber.scrub(
        "Dr. Kyle Kuefer said Kuefer is away; ask Dr. Lee.", mapping
    )
    assert scrubbed.startswith("<PERSON_1> said <PERSON_1> is away")
    assert "Dr" not in mapping


def test_lower_case_text_keeps_names_and_places_only(shared_models) -> None:
    found = _found(shared_models.scrubber, "we moved here from tunisia and emily is my daughter")
    assert ("tunisia", "LOCATION") in found and ("emily", "PERSON") in found
    assert len(found) == 2
