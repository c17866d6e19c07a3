"""Feedback -> examples: the outcome rules, filters, exact and near de-duplication, the split."""

from __future__ import annotations

from typing import Any

import pytest

from training.examples import (
    Example,
    FeedbackRecord,
    FilterRules,
    Outcome,
    deduplicate,
    passes_filters,
    prepare,
    records_to_examples,
    split,
    split_key,
)

ANSWER = "Asthma is a chronic disease of the airways that makes breathing hard at times."


def upper(record: Any) -> dict[str, Any]:
    """A stand-in scrubber that marks what it touched (the real one is tested in tests/safety)."""
    return {
        k: v.replace("Alice", "<PERSON_1>") if isinstance(v, str) else v for k, v in record.items()
    }


def record(
    outcome: str, corrected: str | None = None, question: str = "What is asthma?"
) -> FeedbackRecord:
    return FeedbackRecord(
        outcome, question, "[1] Asthma\ntext", "It is a bird, Alice.", corrected, ("review:1",)
    )


def test_outcomes_become_examples_and_pairs() -> None:
    examples, pairs = records_to_examples(
        [
            record(Outcome.APPROVED),
            record(Outcome.EDITED, ANSWER),
            record(Outcome.EDITED, ANSWER + " Ask Alice."),  # an accepted user correction
            record(Outcome.EDITED, None),  # an edit without text: nothing
        ],
        upper,
    )
    assert [e.output for e in examples] == [
        "It is a bird, <PERSON_1>.",
        ANSWER,
        ANSWER + " Ask <PERSON_1>.",
    ]
    # A pair only where a corrected answer exists: chosen is the correction, rejected the model's.
    assert [(p.chosen, p.rejected) for p in pairs] == [
        (ANSWER, "It is a bird, <PERSON_1>."),
        (ANSWER + " Ask <PERSON_1>.", "It is a bird, <PERSON_1>."),
    ]
    assert all(e.input == "[1] Asthma\ntext" and e.source_ids == ("review:1",) for e in examples)


@pytest.mark.parametrize(
    "output, ok",
    [
        (ANSWER, True),
        ("Too short.", False),
        ("12345 67890 12345 67890 <X> <Y>", False),
        ("the the the the the the the the the the the the", False),
        ("What is asthma?" + " " * 30, False),
    ],
)
def test_filters(output: str, ok: bool) -> None:
    assert passes_filters(Example("What is asthma?", "", output), FilterRules()) is ok


def test_exact_and_near_duplicates_are_dropped_but_different_answers_stay() -> None:
    base = Example("What is asthma?", "", ANSWER)
    same = Example("what  is ASTHMA?", "", ANSWER.upper())
    near = Example("What is asthma?", "", ANSWER.replace("at times", "at times, often"))
    other = Example(
        "What is diabetes?", "", "Diabetes is a disease in which blood sugar is too high."
    )
    kept = deduplicate([base, same, near, other], threshold=0.8)
    assert kept == [base, other]
    # A strict threshold keeps the near duplicate.
    assert len(deduplicate([base, near], threshold=0.99)) == 2


def test_split_is_deterministic_and_stable_under_additions() -> None:
    examples = [Example(f"Question number {i}?", "", ANSWER) for i in range(200)]
    train, validation = split(examples, 0.2)
    assert 20 < len(validation) < 60 and len(train) + len(validation) == 200
    more_train, more_validation = split([*examples, Example("A new question?", "", ANSWER)], 0.2)
    # Every old example stays on its side when the dataset grows.
    assert set(validation) <= set(more_validation) and set(train) <= set(more_train)
    assert split_key("Question number 3?") == split_key("  question NUMBER 3? ")


def test_small_sets_still_get_a_validation_example() -> None:
    train, validation = split([Example("One?", "", ANSWER), Example("Two?", "", ANSWER)], 0.01)
    assert len(validation) == 1 and len(train) == 1


def test_prepare_reports_what_was_dropped() -> None:
    kept, stats = prepare(
        [Example("What is asthma?", "", ANSWER)] * 3 + [Example("Hi?", "", ANSWER)], FilterRules()
    )
    assert len(kept) == 1
    assert stats == {"collected": 4, "dropped_by_filters": 1, "dropped_as_duplicates": 2, "kept": 1}
