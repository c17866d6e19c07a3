"""The subject check before generating: names the corpus has never written."""

from __future__ import annotations

import re

import pytest

from assistant.abstain import check_subject, unknown_parties

CORPUS = {"accuray", "siemens", "aktiengesellschaft", "distributor", "agreement", "asthma"}
COMMON = {"payroll", "solutions", "school", "district", "orchard", "hill", "unified", "law"}


def corpus_unknown(text: str, exact: bool = False) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in CORPUS | COMMON]


def as_written(text: str) -> list[str]:
    return corpus_unknown(text, exact=True)


def test_a_contract_whose_parties_the_corpus_never_wrote_is_not_there() -> None:
    question = (
        "In the Services Agreement between Silverpine Payroll Solutions, Inc. and Orchard Hill"
        " Unified School District: Which state's law governs this agreement?"
    )
    assert unknown_parties(question, as_written, COMMON) == ["silverpine"]
    check = check_subject(question, corpus_unknown, COMMON, [])
    assert not check.answerable and "silverpine" in check.unknown_names


def test_a_contract_with_one_known_party_may_be_there() -> None:
    question = (
        "In the Distributor Agreement between ACCURAY INCORPORATED and Zorblax GmbH: "
        "Which law governs?"
    )
    assert unknown_parties(question, as_written, COMMON) == []


@pytest.mark.parametrize(
    "question",
    [
        "What are the symptoms of asthma?",  # no contract named
        "In the Agreement between the School District and the Hill: what law?",  # all everyday
    ],
)
def test_questions_that_name_no_party_pass(question: str) -> None:
    assert unknown_parties(question, as_written, COMMON) == []
