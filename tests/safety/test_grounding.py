"""The support check: every shown sentence must be backed by the evidence it cites."""

from __future__ import annotations

from safety.grounding import (
    SentenceSplitter,
    SupportConfig,
    check_answer,
    check_sentence,
    is_degenerate,
    numbers_in,
    split_sentences,
)

CONFIG = SupportConfig()
EVIDENCE = {
    1: "Strategic Alliance Agreement. THIS AGREEMENT is made this 15th day of July, 2010 by "
    "and between IMedicor, Inc, a Nevada Corporation, and USA Managed Care Organization.",
    2: "Triple X syndrome. Trisomy X is not inherited. Most females with trisomy X have "
    "normal sexual development and are able to conceive children.",
}


def test_a_copied_sentence_is_supported_and_keeps_its_number() -> None:
    check = check_sentence("Trisomy X is not inherited. [2]", EVIDENCE, CONFIG)
    assert check.supported and check.cited == (2,)
    assert check.render() == "Trisomy X is not inherited. [2]"


def test_a_date_absent_from_the_evidence_is_never_supported() -> None:
    # Every word but the year is in the evidence: the number alone must sink it.
    check = check_sentence(
        "THIS AGREEMENT is made this 15th day of July, 2011 by and between IMedicor. [1]",
        EVIDENCE,
        CONFIG,
    )
    assert not check.supported and check.reason == "numbers"


def test_an_amount_in_no_evidence_is_not_supported_even_uncited() -> None:
    check = check_sentence("The initial franchise fee is $25,000.", EVIDENCE, CONFIG)
    assert not check.supported


def test_a_negation_turned_around_is_not_supported() -> None:
    check = check_sentence("Trisomy X is inherited. [2]", EVIDENCE, CONFIG)
    assert not check.supported and check.reason == "negation"


def test_a_sentence_citing_the_wrong_number_is_recited_to_its_evidence() -> None:
    check = check_sentence("Trisomy X is not inherited. [1]", EVIDENCE, CONFIG)
    assert check.supported and check.cited == (2,)


def test_an_invented_claim_is_dropped() -> None:
    check = check_sentence(
        "The most common treatment is to have multiple pregnancies. [2]", EVIDENCE, CONFIG
    )
    assert not check.supported and check.reason == "words"


def test_a_paraphrase_passes_only_with_a_close_meaning() -> None:
    sentence = "Most women with trisomy X develop normally and can become mothers. [2]"
    assert not check_sentence(sentence, EVIDENCE, CONFIG).supported
    close = check_sentence(sentence, EVIDENCE, CONFIG, similarity=lambda a, b: 0.9)
    far = check_sentence(sentence, EVIDENCE, CONFIG, similarity=lambda a, b: 0.3)
    assert close.supported and not far.supported


def test_a_repeated_sentence_is_shown_once() -> None:
    checks = list(
        check_answer(
            ["Trisomy X is not inherited. [2]", "Trisomy X is not inherited. [2]"],
            EVIDENCE,
            CONFIG,
        )
    )
    assert [c.supported for c in checks] == [True, False]
    assert checks[1].reason == "repeat"


def test_degenerate_answers_are_recognised() -> None:
    for text in ("", "The answer is:", "The answer is: 1", "Yes. [1]", "  [2] "):
        assert is_degenerate(text), text
    assert not is_degenerate("Trisomy X is not inherited. [2]")


def test_numbers_are_compared_without_their_separators() -> None:
    assert numbers_in("a fee of $25,000 and 12.4% of 3 cases") == {"25000", "12.4", "3"}


def test_the_splitter_waits_for_the_next_sentence_and_keeps_markers_after_the_period() -> None:
    splitter = SentenceSplitter()
    out: list[str] = []
    for piece in [
        "Diabetes is a disease",
        ". [1",
        "] Over time,",
        " it harms",
        " the eyes. [",
        "2]",
    ]:
        out += splitter.feed(piece)
    assert out == ["Diabetes is a disease. [1]"]
    assert splitter.flush() == ["Over time, it harms the eyes. [2]"]


def test_abbreviations_do_not_end_a_sentence() -> None:
    assert split_sentences("Made by Acme Inc. and Beta Corp. on May 2. [1] Next one. [1]") == [
        "Made by Acme Inc. and Beta Corp. on May 2. [1]",
        "Next one. [1]",
    ]
