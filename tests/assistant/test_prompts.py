from __future__ import annotations

import pytest

from assistant.errors import ContextOverflow
from assistant.prompts import (
    SYSTEM_PROMPT,
    Source,
    attribute_sentences,
    build_prompt,
    cited_numbers,
    compact_passage,
)
from retrieval.types import Chunk, Hit


def hit(text: str, title: str = "Asthma", n: int = 1) -> Hit:
    return Hit(Chunk(f"d{n}", title, "medical", "", 0, len(text), text), 0.1, 0.8, n)


def count(text: str) -> int:
    return len(text.split())


def test_sources_are_numbered_and_trimmed_but_the_question_is_whole() -> None:
    question = "What triggers asthma attacks in children " + "really " * 20 + "?"
    long = " ".join(f"Sentence {i} about triggers." for i in range(200))
    prompt = build_prompt(
        question,
        [hit(long, n=1), hit("Pollen is a trigger.", n=2)],
        count,
        context_tokens=400,
        answer_tokens=100,
    )
    system, user = prompt.messages[0]["content"], prompt.messages[1]["content"]
    assert system == SYSTEM_PROMPT  # a constant prefix: llama.cpp reuses its evaluated tokens
    assert user.startswith("Sources:\n[1] Asthma\n") and user.endswith(f"Question: {question}")
    assert sum(count(m["content"]) for m in prompt.messages) <= 400 - 100
    assert prompt.sources[0].text.endswith(".")  # cut at a sentence end
    assert len(prompt.sources[0].text) < len(long)


def test_a_question_that_cannot_fit_is_refused() -> None:
    with pytest.raises(ContextOverflow):
        build_prompt("word " * 500, [hit("x")], count, context_tokens=300, answer_tokens=50)


def test_cited_numbers_in_order_without_repeats() -> None:
    assert cited_numbers("A [2]. B [1][2]. C [10].") == [2, 1, 10]


def test_attribution_marks_supported_sentences_only() -> None:
    sources = [
        Source(
            1,
            hit("Inhaled corticosteroids reduce airway inflammation in asthma."),
            "Inhaled corticosteroids reduce airway inflammation in asthma.",
        ),
        Source(
            2,
            hit("Glaucoma damages the optic nerve.", "Glaucoma", 2),
            "Glaucoma damages the optic nerve.",
        ),
    ]
    answer = (
        "Inhaled corticosteroids reduce airway inflammation. "
        "Glaucoma damages the optic nerve. Bananas are yellow and tasty fruit."
    )
    marked = attribute_sentences(answer, sources)
    assert "inflammation. [1]" in marked
    assert "optic nerve. [2]" in marked
    assert "tasty fruit." in marked and "fruit. [" not in marked
