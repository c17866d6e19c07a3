"""The subject check before generating: names the corpus has never written."""

from __future__ import annotations

import re

import pytest

from assistant.asking.abstain import check_subject, law_names, unknown_laws, unknown_parties

CORPUS = {"accuray", "siemens", "aktiengesellschaft", "distributor", "agreement", "asthma"}
COMMON = {"payroll", "solutions", "school", "district", "orchard", "hill", "unified", "law"}
COMMON |= {"consumer", "privacy", "act", "california", "securities", "code", "conduct", "help"}
COMMON |= {"does", "the", "let", "employees", "demand", "deletion"}
PASSAGES = "the securities act of 1933, as amended. asthma is a disease of the airways."


def corpus_unknown(text: str, exact: bool = False) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in CORPUS | COMMON]


def as_written(text: str) -> list[str]:
    return corpus_unknown(text, exact=True)


class Corpus:
    """Knows the words of CORPUS and COMMON, and writes only PASSAGES."""

    def unknown_words(self, text: str, exact: bool = False) -> list[str]:
        return corpus_unknown(text, exact)

    def has_phrase(self, phrase: str) -> bool:
        return " ".join(re.findall(r"[a-z0-9]+", phrase.lower())) in PASSAGES


CORPUS_VOCABULARY = Corpus()


def test_a_contract_whose_parties_the_corpus_never_wrote_is_not_there() -> None:
    question = (
        "In the Services Agreement between Silverpine Payroll Solutions, Inc. and Orchard Hill"
        " Unified School District: Which state's law governs this agreement?"
    )
    assert unknown_parties(question, as_written, COMMON) == ["silverpine"]
    check = check_subject(question, CORPUS_VOCABULARY, COMMON, [])
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


@pytest.mark.parametrize(
    ("question", "names"),
    [
        (
            "How long is the cooling-off period under the Australian Franchising Code of Conduct?",
            ["Australian Franchising Code of Conduct"],
        ),
        (
            "Does India's Digital Personal Data Protection Act 2023 apply?",
            ["Digital Personal Data Protection Act"],
        ),
        ("Is the Securities Act of 1933 mentioned?", ["Securities Act"]),
        ("Does Canada's PIPEDA require consent?", ["PIPEDA"]),
        ("Under the Code of Federal Regulations, what applies?", ["Code of Federal Regulations"]),
        ("What is the name of the contract?", []),
        ("What does the act say?", []),  # no title: nothing to look up
    ],
)
def test_the_laws_a_question_names_are_read_as_whole_titles(
    question: str, names: list[str]
) -> None:
    assert law_names(question) == names


def test_a_law_whose_title_no_source_writes_declines_the_question() -> None:
    question = "Does the California Consumer Privacy Act let employees demand deletion?"
    # Every word is known to the corpus, one by one; the title is written nowhere.
    assert corpus_unknown(question) == []
    assert unknown_laws(question, CORPUS_VOCABULARY, COMMON) == ["California Consumer Privacy Act"]
    check = check_subject(question, CORPUS_VOCABULARY, COMMON, [])
    assert not check.answerable and check.unknown_names == ("California Consumer Privacy Act",)


def test_a_law_the_sources_write_and_shouting_pass() -> None:
    assert unknown_laws("Is the Securities Act of 1933 cited?", CORPUS_VOCABULARY, COMMON) == []
    assert unknown_laws("HELP what is asthma", CORPUS_VOCABULARY, COMMON) == []


def test_a_party_mistyped_by_one_key_is_the_contract_found() -> None:
    question = "In the Distributorship Agreement between STARAR SURGICAL AG and Distributor: Law?"
    evidence = ["Distributorship Agreement. STAAR SURGICAL AG, a Swiss company, and ..."]
    assert unknown_parties(question, as_written, COMMON | {"surgical", "distributor"}) == ["starar"]
    assert (
        unknown_parties(question, as_written, COMMON | {"surgical", "distributor"}, evidence) == []
    )
