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

from collections.abc import Collection, Sequence

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


# Chat templates for a base GGUF that carries none (Gemma 3 270M is a base model): training
# sets it on the tokenizer and the export writes it into the GGUF, so llama.cpp formats a
# served conversation exactly as training did. Gemma has no system role: the system text
# opens the first user turn, as Gemma's own instruction-tuned template does.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}"
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\\n\\n' %}"
    "{% elif m['role'] == 'user' %}"
    "{{ '<start_of_turn>user\\n' + ns.system + m['content'] + '<end_of_turn>\\n' }}"
    "{% set ns.system = '' %}"
    "{% else %}{{ '<start_of_turn>model\\n' + m['content'] + '<end_of_turn>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for m in messages %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# The token that closes an assistant turn, by template.
TURN_ENDS = ("<|im_end|>", "<end_of_turn>")


def template_for(vocabulary: Collection[str]) -> str:
    """The chat template for a base without one: Gemma's turns if its vocabulary has them."""
    return GEMMA_TEMPLATE if "<start_of_turn>" in vocabulary else CHATML_TEMPLATE
