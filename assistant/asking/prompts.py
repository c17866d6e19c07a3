"""Grounded prompts: the numbered evidence, the earlier questions and the question.

The layout itself is ``training.prompt_format``'s, the one the served model was trained on;
this module fits the parts into the model's context: the question is never cut, earlier
questions go first, then the evidence of the lowest-ranked sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.errors import ContextOverflow
from retrieval.evidence import Evidence
from training.prompt_format import SYSTEM_PROMPT, chat_messages, context_of, evidence_block

__all__ = ["SYSTEM_PROMPT", "Prompt", "build_prompt", "cited_numbers", "render_context"]

# Chat template framing (role markers, separators) that the token count of the parts misses.
TEMPLATE_OVERHEAD_TOKENS = 32

_MARKER = re.compile(r"\[(\d{1,3})\]")


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    evidence: list[Evidence]  # the sources the model reads, numbered as it reads them


def render_context(evidence: Sequence[Evidence], earlier: Sequence[str] = ()) -> str:
    """The text before the question, exactly as the trained model saw it."""
    block = evidence_block([(e.n, e.hit.chunk.title, e.text) for e in evidence])
    return context_of(block, earlier)


def build_prompt(
    question: str,
    evidence: Sequence[Evidence],
    count_tokens: Callable[[str], int],
    context_tokens: int,
    answer_tokens: int,
    earlier: Sequence[str] = (),
) -> Prompt:
    """Messages that fit ``context_tokens`` with ``answer_tokens`` left for the answer."""
    fixed = count_tokens(SYSTEM_PROMPT) + count_tokens(question) + TEMPLATE_OVERHEAD_TOKENS
    if fixed + answer_tokens > context_tokens:
        raise ContextOverflow("the question is too long for the model's context window; shorten it")
    kept_evidence, kept_earlier = list(evidence), list(earlier)
    while True:
        context = render_context(kept_evidence, kept_earlier)
        if fixed + count_tokens(context) + answer_tokens <= context_tokens:
            break
        if kept_earlier:
            kept_earlier.pop(0)
        elif kept_evidence:
            kept_evidence.pop()
        else:
            break
    return Prompt(chat_messages(question, context), kept_evidence)


def cited_numbers(answer: str) -> list[int]:
    """The source numbers the answer cites, in order of first mention."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        n = int(match.group(1))
        if n not in seen:
            seen.append(n)
    return seen
