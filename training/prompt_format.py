"""The served model's input and output layout: one definition for serving and for training.

A model learns the exact layout it is trained on, so the product's prompts and the training
examples are both built here. The system prompt is constant and comes first (llama.cpp
reuses its evaluated tokens from one turn to the next); the user message holds the earlier
questions of the conversation, the numbered evidence, and the question:

    Earlier question: What is diabetes?

    Evidence:
    [1] Diabetes: Diabetes is a disease in which ... Over time, ...
    [2] Diabetic Neuropathy: ...

    Question: What are the symptoms of diabetes?

The answer copies or condenses evidence sentences, each followed by its number, or is
exactly ``NOT_IN_SOURCES``.
"""

from __future__ import annotations

from collections.abc import Sequence

NOT_IN_SOURCES = "The sources I can search do not answer this question."

SYSTEM_PROMPT = (
    "You answer medical and legal questions from the numbered evidence only. Copy the "
    "evidence's own words, and end each sentence with the number of the evidence it comes "
    "from, like [1]. Never add facts, numbers or names that are not in the evidence. If the "
    f"evidence does not answer the question, reply only: {NOT_IN_SOURCES}"
)

EVIDENCE_HEADER = "Evidence:"
QUESTION_PREFIX = "Question: "
EARLIER_PREFIX = "Earlier question: "


def evidence_block(sources: Sequence[tuple[int, str, str]]) -> str:
    """``Evidence:`` and one line per ``(n, title, text)``; empty without sources."""
    if not sources:
        return ""
    lines = [f"[{n}] {title.strip()}: {' '.join(text.split())}" for n, title, text in sources]
    return "\n".join([EVIDENCE_HEADER, *lines])


def context_of(evidence: str, earlier_questions: Sequence[str] = ()) -> str:
    """What comes before the question: the earlier questions, then the evidence block."""
    parts = [f"{EARLIER_PREFIX}{' '.join(q.split())}" for q in earlier_questions if q.strip()]
    if parts and evidence:
        parts.append("")
    if evidence:
        parts.append(evidence)
    return "\n".join(parts)


def user_message(question: str, context: str) -> str:
    return (
        f"{context}\n\n{QUESTION_PREFIX}{question}" if context else f"{QUESTION_PREFIX}{question}"
    )


def chat_messages(
    question: str, context: str, system_prompt: str = SYSTEM_PROMPT
) -> list[dict[str, str]]:
    """The messages the model reads, for serving and for a training example alike."""
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": user_message(question, context)},
    ]
