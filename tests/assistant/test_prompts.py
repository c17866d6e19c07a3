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


def test_compact_passage_keeps_the_sentences_about_the_question() -> None:
    text = (
        "Asthma is a chronic disease of the airways. "
        "Many people have it worldwide. "
        "The history of its study is long. "
        "Researchers publish papers every year. "
        "Common triggers include pollen, dust mites and cold air. "
        "Funding comes from several agencies. "
        "Inhaled corticosteroids treat the inflammation."
    )
    start, end, compact = compact_passage(text, "What triggers asthma?", keep=2)
    assert "pollen, dust mites" in compact and "Funding" not in compact
    assert "Asthma is a chronic disease" in compact  # matches "asthma"
    assert " ... " in compact  # the gap is marked
    assert text[start:end].startswith("Asthma is") and text[start:end].endswith("cold air.")
    assert len(compact) < len(text)


def test_compact_sources_cite_the_span_the_model_saw() -> None:
    text = " ".join(f"Filler sentence number {i} here." for i in range(12))
    text += " Metformin lowers blood sugar in type 2 diabetes."
    source = build_prompt(
        "Does metformin lower blood sugar?",
        [hit(text, "Diabetes")],
        count,
        context_tokens=2000,
        answer_tokens=100,
        compact=True,
    ).sources[0]
    assert "Metformin lowers blood sugar" in source.text
    start, end = source.span
    assert text[start:end].endswith("type 2 diabetes.")
    assert len(source.text) < len(text)


def test_attribution_does_not_cite_a_source_that_only_shares_common_words() -> None:
    # Both sources are about asthma; the sentence is about inhalers, which only [2] covers.
    sources = [
        Source(
            1,
            hit("Asthma affects the airways of children and adults.", n=1),
            "Asthma affects the airways of children and adults.",
        ),
        Source(
            2,
            hit("Rescue inhalers with albuterol relax asthma airways quickly.", n=2),
            "Rescue inhalers with albuterol relax asthma airways quickly.",
        ),
    ]
    marked = attribute_sentences("Albuterol rescue inhalers relax the airways quickly.", sources)
    assert marked.endswith("[2]")
    # A sentence with too little support is left uncited rather than guessed.
    vague = attribute_sentences("Children should see doctors about many conditions.", sources)
    assert "[" not in vague
