"""Grounded prompts: the trained layout, fitted to the context; the question is never cut."""

from __future__ import annotations

import pytest

from assistant.asking.prompts import SYSTEM_PROMPT, build_prompt, cited_numbers
from assistant.errors import ContextOverflow
from retrieval.evidence import Evidence, Sentence
from retrieval.types import Chunk, Hit
from training.prompt_format import chat_messages


def evidence(n: int, text: str, title: str = "Asthma") -> Evidence:
    hit = Hit(Chunk(f"d{n}", title, "medical", "", 0, len(text), text), 0.1, 0.8, n)
    return Evidence(n, hit, (Sentence(0, len(text), text),))


def count(text: str) -> int:
    return len(text.split())


def test_the_prompt_is_the_trained_layout_with_numbered_evidence() -> None:
    items = [evidence(1, "Pollen is a trigger."), evidence(2, "Smoke is too.", "Smoke")]
    prompt = build_prompt(
        "What triggers asthma?", items, count, 400, 100, earlier=["What is asthma?"]
    )
    system, user = prompt.messages[0]["content"], prompt.messages[1]["content"]
    assert system == SYSTEM_PROMPT  # a constant prefix: llama.cpp reuses its evaluated tokens
    assert user == (
        "Earlier question: What is asthma?\n\nEvidence:\n[1] Asthma: Pollen is a trigger.\n"
        "[2] Smoke: Smoke is too.\n\nQuestion: What triggers asthma?"
    )
    # Training examples are laid out by the same function.
    context = user.rsplit("\n\nQuestion: ", 1)[0]
    assert chat_messages("What triggers asthma?", context) == prompt.messages


def test_earlier_questions_go_first_then_the_last_sources_and_the_question_stays_whole() -> None:
    question = "What triggers asthma attacks in children " + "really " * 20 + "?"
    items = [evidence(i, "word " * 60) for i in range(1, 5)]
    prompt = build_prompt(question, items, count, 260, 50, earlier=["an earlier question " * 5])
    user = prompt.messages[1]["content"]
    assert "Earlier question" not in user
    assert user.endswith(f"Question: {question}")
    assert 0 < len(prompt.evidence) < 4 and prompt.evidence[0].n == 1
    assert sum(count(m["content"]) for m in prompt.messages) + 32 <= 260 - 50


def test_a_question_that_cannot_fit_is_refused() -> None:
    with pytest.raises(ContextOverflow):
        build_prompt("word " * 500, [evidence(1, "x")], count, 300, 50)


def test_cited_numbers_in_order_without_repeats() -> None:
    assert cited_numbers("A [2]. B [1][2]. C [10].") == [2, 1, 10]
