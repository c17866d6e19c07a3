"""Examples as token ids: the prompt as serving builds it, the loss on the answer only,
and padded batches."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.datasets import chat_messages
from training.examples import Example
from training.prompt_format import TURN_ENDS

if TYPE_CHECKING:
    import torch

IGNORE = -100  # label of tokens the loss skips (the prompt, the padding)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


def answer_end_ids(tokenizer: Any) -> list[int]:
    """The tokens that close an assistant turn in the chat template (ChatML: <|im_end|>,
    Gemma: <end_of_turn>)."""
    vocabulary = tokenizer.get_vocab()
    for marker in TURN_ENDS:
        if marker in vocabulary:
            return [tokenizer.convert_tokens_to_ids(marker)]
    return [tokenizer.eos_token_id]


def prompt_ids(tokenizer: Any, instruction: str, context: str, system_prompt: str) -> list[int]:
    """The prompt tokens exactly as serving builds them: the GGUF's chat template."""
    ids = tokenizer.apply_chat_template(
        chat_messages(instruction, context, system_prompt),
        add_generation_prompt=True,
        tokenize=True,
    )
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


def encode(
    example: Example, tokenizer: Any, system_prompt: str, max_seq_len: int
) -> Encoded | None:
    """Prompt + answer tokens, labels masked to the answer; None when the prompt alone
    leaves fewer than 16 answer tokens (the answer is cut to fit otherwise)."""
    prompt = prompt_ids(tokenizer, example.instruction, example.input, system_prompt)
    answer = tokenizer(example.output, add_special_tokens=False)["input_ids"]
    answer = list(answer) + answer_end_ids(tokenizer)
    room = max_seq_len - len(prompt)
    if room < 16:
        return None
    answer = answer[:room]
    return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer)


def batches(
    encoded: Sequence[Encoded], batch_size: int, pad_id: int, rng: random.Random | None
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(input_ids, attention_mask, labels) padded on the right; shuffled when ``rng`` is given."""
    import torch

    order = list(range(len(encoded)))
    if rng is not None:
        rng.shuffle(order)
    out = []
    for start in range(0, len(order), batch_size):
        group = [encoded[i] for i in order[start : start + batch_size]]
        width = max(len(e.input_ids) for e in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        labels = torch.full((len(group), width), IGNORE, dtype=torch.long)
        for row, e in enumerate(group):
            n = len(e.input_ids)
            ids[row, :n] = torch.tensor(e.input_ids)
            mask[row, :n] = 1
            labels[row, :n] = torch.tensor(e.labels)
        out.append((ids, mask, labels))
    return out


def to_device(device: str, batch: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    """``batch`` on ``device`` (on the CPU, as it is)."""
    if device == "cpu":
        return batch
    ids, mask, labels = batch
    return ids.to(device), mask.to(device), labels.to(device)
