from __future__ import annotations

import pytest

from safety.guards import check_question, normalise_question

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
    text = "What are the side effects of metformin for type 2 diabetes?"
    assert shared_models.scrubber.scrub(text) == text


def test_mapping_keeps_numbering_across_messages(shared_models) -> None:
    mapping: dict[str, str] = {}
    first = shared_models.scrubber.scrub("Call Dana Okafor tomorrow.", mapping)
    second = shared_models.scrubber.scrub("Did Dana Okafor reply? Ask Priya Raman too.", mapping)
    assert "<PERSON_1>" in first and "<PERSON_1>" in second and "<PERSON_2>" in second


def test_question_checks() -> None:
    assert normalise_question("  a\x00b\u200bc \n") == "abc"
    assert not check_question("", 100).allowed
    assert not check_question("x" * 101, 100).allowed
    assert check_question("What is asthma?", 100).allowed
