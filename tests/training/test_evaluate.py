"""The gate's scoring in llama.cpp on the shipped GGUF: items are scored independently, and an
item too long for the context is skipped and counted, never a crash."""

from __future__ import annotations

import pytest

from tests.paths import CHAT_MODEL
from training.evaluate import EvalItem, ServedModel, score
from training.prompt_format import SYSTEM_PROMPT

pytestmark = pytest.mark.slow

ITEMS = [
    EvalItem("What is asthma?", "[1] Asthma\nAsthma is a disease of the airways.", "A disease."),
    EvalItem("What is gout?", "[1] Gout\nGout is a kind of arthritis.", "A kind of arthritis."),
]


def test_each_item_is_answered_from_its_own_prompt_only() -> None:
    model = ServedModel(CHAT_MODEL, n_ctx=512)
    fresh = ServedModel(CHAT_MODEL, n_ctx=512)
    try:
        for item in ITEMS:  # one after the other on the same model
            model.greedy(model.prompt_tokens(item.instruction, item.context, SYSTEM_PROMPT), 12)
        last = ITEMS[-1]
        prompt = fresh.prompt_tokens(last.instruction, last.context, SYSTEM_PROMPT)
        again = model.greedy(prompt, 12)[0]
        alone = fresh.greedy(prompt, 12)[0]
        assert again == alone and again.strip()
    finally:
        model.close()
        fresh.close()


def test_items_longer_than_the_context_are_skipped_and_counted() -> None:
    model = ServedModel(CHAT_MODEL, n_ctx=256)
    long_context = "[1] Asthma\n" + "Asthma narrows the airways and makes breathing hard. " * 60
    try:
        scores = score(
            model,
            [ITEMS[0], EvalItem("What is asthma?", long_context, "A disease.")],
            SYSTEM_PROMPT,
            max_tokens=8,
        )
    finally:
        model.close()
    assert scores.skipped == 1 and scores.n == 1
