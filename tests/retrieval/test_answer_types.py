"""Answer types: fitted from labelled answers, matched by what a question asks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.answer_types import (
    AnswerTypes,
    LabelledAnswer,
    fit_answer_types,
    overlapping,
    without_title,
)


def unit(*weights: float) -> np.ndarray:
    vector = np.zeros(6, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


TITLE = unit(1)  # every question names its contract: the title's direction


def labelled(kind: str, asks: np.ndarray, answer: np.ndarray, n: int = 3) -> list[LabelledAnswer]:
    return [
        LabelledAnswer(kind, unit(*(TITLE + asks + 0.01 * i)), TITLE, np.stack([answer]))
        for i in range(n)
    ]


def fitted() -> AnswerTypes:
    items = labelled("Governing Law", unit(0, 1), unit(0, 0, 1))
    items += labelled("Termination", unit(0, 0, 0, 1), unit(0, 0, 0, 0, 1))
    items += labelled("Rare", unit(0, 0, 0, 0, 0, 1), unit(0, 1), n=1)  # too few to fit
    return fit_answer_types(items, "legal", provenance={"qa_file": "x.jsonl"})


def test_a_kind_is_its_questions_without_the_title_and_its_answers() -> None:
    types = fitted()
    assert types.kinds == ("Governing Law", "Termination")
    assert types.provenance["questions"] == {"Governing Law": 3, "Termination": 3}
    # The title's direction is gone from what the kind asks.
    assert abs(float(types.asks[0] @ TITLE)) < 1e-6
    assert float(types.answers[1] @ unit(0, 0, 0, 0, 1)) == pytest.approx(1.0)


def test_a_new_question_expects_the_answer_of_the_kind_it_is_nearest_to() -> None:
    types = fitted()
    # Worded otherwise (not the exemplars' vector), still nearest to Termination.
    question = unit(1, 0.2, 0, 0.9)
    expected = types.expected_answers(without_title(question, TITLE))
    assert expected.shape == (1, 6)
    assert float(expected[0] @ unit(0, 0, 0, 0, 1)) > 0.99


def test_saved_and_loaded_they_answer_the_same(tmp_path: Path) -> None:
    types = fitted()
    path = tmp_path / "types.npz"
    types.save(path)
    loaded = AnswerTypes.load(path)
    assert loaded.kinds == types.kinds and loaded.collection == "legal"
    assert loaded.provenance["qa_file"] == "x.jsonl"
    asked = without_title(unit(1, 0.9), TITLE)
    np.testing.assert_allclose(
        loaded.expected_answers(asked), types.expected_answers(asked), atol=1e-3
    )


def test_nothing_to_fit_is_an_error() -> None:
    with pytest.raises(ValueError):
        fit_answer_types(labelled("Rare", unit(0, 1), unit(0, 1), n=1), "legal")


def test_passages_overlapping_the_labelled_spans() -> None:
    assert overlapping([0, 100, 200], [100, 200, 300], [(150, 160), (290, 400)]) == [1, 2]
    assert overlapping([0, 100], [100, 200], [(100, 100)]) == []
