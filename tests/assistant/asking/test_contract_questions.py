"""The one parser of "In the <contract> between <parties>: <ask>"."""

from __future__ import annotations

from assistant.asking.contract_questions import read_contract_question


def test_a_question_naming_its_contract_and_parties() -> None:
    read = read_contract_question(
        "In the Services Agreement between Acme, Inc. and Birch & Co: Which law governs?"
    )
    assert read is not None
    assert read.prefix == "In the Services Agreement between Acme, Inc. and Birch & Co:"
    assert read.ask == "Which law governs?"
    assert read.contract == "Services Agreement"
    assert read.parties == ("Acme", "Inc.", "Birch", "Co")


def test_a_contract_named_without_parties_still_opens_a_contract_question() -> None:
    read = read_contract_question("in the lease: can I sublet?")
    assert read is not None and read.contract is None and read.parties == ()
    assert read.prefix == "in the lease:" and read.ask == "can I sublet?"


def test_other_questions_are_not_contract_questions() -> None:
    assert read_contract_question("What are the symptoms of asthma?") is None
    assert read_contract_question("In the morning, is it worse? Why:") is None
