from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from safety.guards import check_question, normalise_question
from safety.pii import (
    PIIConfigError,
    PIIScrubber,
    load_key,
    reveal,
    scrub_example,
)
from safety.pii_conversation import PlaceholderMap

pytestmark = pytest.mark.slow


def test_scrub_replaces_personal_data_with_numbered_placeholders(shared_models) -> None:
    scrubber = shared_models.scrubber
    text = (
        "Patient Eleanor Whitcombe (eleanor.w@example.com, 617-555-0134) asked about "
        "her insulin. Eleanor Whitcombe lives in Springfield."
    )
    scrubbed = scrubber.scrub(text)
    for value in ("Eleanor", "Whitcombe", "eleanor.w@example.com", "617-555-0134"):
        assert value not in scrubbed
    assert scrubbed.count("<PERSON_1>") == 2  # the same person keeps one placeholder
    assert "<EMAIL_ADDRESS_1>" in scrubbed and "<PHONE_NUMBER_1>" in scrubbed
    assert "insulin" in scrubbed


def test_text_without_personal_data_is_unchanged(shared_models) -> None:
    for text in (
        "What are the side effects of metformin for type 2 diabetes?",
        "Take 2 tablets of 500 mg three times a day since 2019?",
        "Can my employer fire me for being pregnant under the Civil Rights Act?",
        "What are the symptoms of Parkinson's disease?",
        # Sentences the model ran together are not web addresses.
        "It can trigger asthma.The cause is often an allergy.Treatment helps.",
    ):
        assert shared_models.scrubber.scrub(text) == text


def test_web_addresses_are_still_found(shared_models) -> None:
    for text, value in (
        ("See my blog at https://jane-doe.example.net/about for more.", "jane-doe.example.net"),
        ("My page is www.whitcombe-family.org.", "whitcombe-family.org"),
        ("Write to whitcombefamily.org about it.", "whitcombefamily.org"),
    ):
        assert value not in shared_models.scrubber.scrub(text), text


def test_domain_identifiers_are_found(shared_models) -> None:
    cases = {
        "My MRN is 00451287 at the clinic.": ("00451287", "MEDICAL_RECORD_NUMBER"),
        "Insurance member ID: XWP884512301, is PT covered?": ("XWP884512301", "HEALTH_PLAN_ID"),
        "Dr. Lee's NPI is 1234567893.": ("1234567893", "NPI"),
        "My driver's license number is F162823540116": ("F162823540116", "US_DRIVER_LICENSE"),
        "Passport number 584930211 expired.": ("584930211", "US_PASSPORT"),
        "Case No. 1:21-cv-04567 was filed in May.": ("1:21-cv-04567", "CASE_NUMBER"),
        "He was born on 03/14/1962 in Ohio.": ("03/14/1962", "DATE_TIME"),
        "My SSN is 536-22-8143.": ("536-22-8143", "US_SSN"),
        "Send it to 1737 Cheriton Dr\n Apt. 724\n Hibberdene": ("1737 Cheriton Dr", "ADDRESS"),
        "My 79 year old mother has a cough.": ("79", "AGE"),
    }
    for text, (value, entity) in cases.items():
        found = {
            (text[s.start : s.end], s.entity_type) for s in shared_models.scrubber.detect(text)
        }
        assert any(value in v and t == entity for v, t in found), (text, found)


def test_mapping_keeps_numbering_across_messages(shared_models) -> None:
    mapping: dict[str, str] = {}
    first = shared_models.scrubber.scrub("Call Dana Okafor tomorrow.", mapping)
    second = shared_models.scrubber.scrub("Did Dana Okafor reply? Ask Priya Raman too.", mapping)
    assert "<PERSON_1>" in first and "<PERSON_1>" in second and "<PERSON_2>" in second


def test_placeholder_map_keeps_only_keyed_digests(shared_models) -> None:
    mapping = PlaceholderMap(b"k" * 32)
    first = shared_models.scrubber.scrub("I am Dana Okafor, call 415-555-0199.", mapping)
    second = shared_models.scrubber.scrub("Dana here again: (415) 555 0199 is my cell.", mapping)
    assert "<PERSON_1>" in first and "<PERSON_1>" in second
    assert "<PHONE_NUMBER_1>" in first and "<PHONE_NUMBER_1>" in second
    stored = json.dumps(mapping.to_json())
    for raw in ("Dana", "Okafor", "415", "0199", "dana"):
        assert raw not in stored
    # Another key gives other digests: the map cannot be matched against guesses without it.
    assert PlaceholderMap(b"x" * 32).digest("PERSON", "Dana") != mapping.digest("PERSON", "Dana")


def test_a_name_found_once_in_a_conversation_is_found_in_its_later_messages(shared_models) -> None:
    # The NER model takes "Rosalind" opening a sentence for a verb (found by the whole-product
    # scan, tests/web/test_whole_product_pii.py); the conversation's map knows the name.
    scrubber = shared_models.scrubber
    mapping = PlaceholderMap(b"k" * 32)
    scrubber.scrub("Hello, I am Rosalind Quarrendon. My brother is Will.", mapping)
    for text in (
        "Rosalind again: is it asthma?",
        "The answer was wrong for Rosalind.",
        "Is Rosalind's cough worse?",
    ):
        scrubbed = scrubber.scrub(text, mapping)
        assert "Rosalind" not in scrubbed and "<PERSON_1>" in scrubbed, scrubbed
    # A name that is also an everyday word is not taken for the name everywhere.
    assert scrubber.scrub("I will call the clinic.", mapping) == "I will call the clinic."


def test_a_known_name_just_before_a_found_one_is_part_of_it(shared_models) -> None:
    for text in ("Rosalind Quarrendon here: is it asthma?", "Rosalind Quarrendon is right."):
        assert shared_models.scrubber.scrub(text).startswith("<PERSON_1> "), text


def test_redact_and_reversible_pseudonyms(shared_models, tmp_path: Path) -> None:
    scrubber = shared_models.scrubber
    text = "Margaret Thornbury (margaret@example.com) asked about asthma."
    assert scrubber.redact(text).startswith("<PERSON> (<EMAIL_ADDRESS>)")
    key = load_key(tmp_path / "keys" / "pseudonym.key", "pseudonym", create=True)
    assert stat.S_IMODE((tmp_path / "keys" / "pseudonym.key").stat().st_mode) == 0o600
    hidden = scrubber.pseudonymise(text, key)
    assert "Thornbury" not in hidden and "margaret@example.com" not in hidden
    assert hidden.startswith("<PERSON:")
    assert reveal(hidden, key) == text
    with pytest.raises(PIIConfigError):
        reveal(hidden, b"w" * 32)


def test_dataset_records_are_scrubbed_with_one_numbering(shared_models) -> None:
    record = {
        "instruction": "Answer the question.",
        "input": "Jonas Zadina asks: is 20 mg atorvastatin a normal dose?",
        "output": "Jonas Zadina, 20 mg is a common starting dose [1].",
        "n": 3,
    }
    clean = scrub_example(shared_models.scrubber, record)
    assert "Zadina" not in json.dumps(clean)
    assert "<PERSON_1>" in clean["input"] and "<PERSON_1>" in clean["output"]
    assert clean["n"] == 3


def test_a_broken_configuration_fails_closed(shared_models) -> None:
    class Broken:
        spacy_model = "no_such_spacy_model"
        pii_score_threshold = 0.4

    with pytest.raises(PIIConfigError):
        PIIScrubber(Broken())
    with pytest.raises(PIIConfigError):
        PIIScrubber(shared_models.settings.safety, entities=())
    with pytest.raises(PIIConfigError):
        PIIScrubber(shared_models.settings.safety, entities=("PERSON", "FAVOURITE_COLOUR"))
    with pytest.raises(PIIConfigError):
        load_key(None, "pseudonym")


def test_question_checks() -> None:
    assert normalise_question("  a\x00b\u200bc \n") == "abc"
    assert not check_question("", 100).allowed
    assert not check_question("x" * 101, 100).allowed
    assert check_question("What is asthma?", 100).allowed


@pytest.mark.parametrize("unit", ["a.", "a.a.a.a.a ", "http://a.", ".com ", "a@b.", "Mr A. "])
def test_the_whole_engine_reads_adversarial_text_in_bounded_time(shared_models, unit) -> None:
    """4,000 characters of one repeated separator: Presidio's URL pattern alone once took
    2.8 s on "a." repeats, holding the engine's lock; the bound is 250 ms per KB."""
    import time

    scrubber = shared_models.scrubber
    text = unit * (4000 // len(unit))
    scrubber.scrub("warm up, Dana Okafor")

    def seconds() -> float:
        started = time.perf_counter()
        scrubber.scrub(text)
        return time.perf_counter() - started

    # The best of three: a loaded machine slows one run, a super-linear pattern every run.
    assert min(seconds() for _ in range(3)) < 1.0, unit
