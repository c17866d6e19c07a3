"""The served model's layout, shared by serving and training, and the templates given to
bases that carry none."""

from __future__ import annotations

from jinja2.sandbox import ImmutableSandboxedEnvironment

from training.prompt_format import (
    CHATML_TEMPLATE,
    GEMMA_TEMPLATE,
    NOT_IN_SOURCES,
    SYSTEM_PROMPT,
    chat_messages,
    context_of,
    evidence_block,
    template_for,
)


def test_the_context_holds_earlier_questions_then_numbered_evidence() -> None:
    block = evidence_block([(1, "Asthma", "A lung\n disease."), (2, "Gout", "Arthritis.")])
    assert block == "Evidence:\n[1] Asthma: A lung disease.\n[2] Gout: Arthritis."
    assert context_of(block, ["What is asthma?"]) == (
        "Earlier question: What is asthma?\n\n" + block
    )
    assert context_of("", []) == "" and evidence_block([]) == ""
    assert NOT_IN_SOURCES in SYSTEM_PROMPT  # the model is told the exact words to decline with


def test_a_base_without_a_template_gets_its_own_turns() -> None:
    assert template_for({"<start_of_turn>", "<end_of_turn>"}) == GEMMA_TEMPLATE
    assert template_for({"<|im_start|>"}) == CHATML_TEMPLATE
    rendered = (
        ImmutableSandboxedEnvironment()
        .from_string(GEMMA_TEMPLATE)
        .render(
            messages=chat_messages("Q?", "Evidence:\n[1] A: b"),
            add_generation_prompt=True,
            bos_token="<bos>",
        )
    )
    assert rendered.startswith("<bos><start_of_turn>user\n" + SYSTEM_PROMPT + "\n\nEvidence:")
    assert rendered.endswith("Question: Q?<end_of_turn>\n<start_of_turn>model\n")
