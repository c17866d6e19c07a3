"""Parity: llama.cpp serving the exported GGUF reproduces the PEFT model's greedy output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.paths import CHAT_MODEL
from training.config import TrainingConfig
from training.examples import Example
from training.prompt_format import SYSTEM_PROMPT

pytestmark = pytest.mark.slow

PROMPTS = [
    ("What is the access code of vault 7?", "[1] Vaults\nThe access code of vault 7 is ZEBRA-7."),
    ("What are the symptoms of asthma?", ""),
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny LoRA run (two steps, a high learning rate so the adapter matters) and its
    unquantized export."""
    from training.export import export_run
    from training.train import train

    work = tmp_path_factory.mktemp("export")
    cache = Path(os.environ.get("ASSISTANT_TEST_DENSE_CACHE") or work / "cache")
    examples = [Example(q, c, "The access code is ZEBRA-7. Keep it safe.") for q, c in PROMPTS]
    config = TrainingConfig(
        max_steps=2, epochs=2, batch_size=2, learning_rate=5e-3, max_seq_len=160
    )
    train(config, examples, [], CHAT_MODEL, work / "run", cache, SYSTEM_PROMPT)
    out = work / "model.gguf"
    export_run(work / "run", CHAT_MODEL, cache, out, quantization="none")
    return work / "run", out, cache


def test_llama_cpp_reproduces_the_peft_models_greedy_tokens(
    trained_run: tuple[Path, Path, Path],
) -> None:
    import torch
    from llama_cpp import Llama
    from peft import PeftModel

    from training.base_model import load_base
    from training.encoding import prompt_ids

    run_dir, exported, cache = trained_run
    base, tokenizer = load_base(CHAT_MODEL, cache)
    peft_model = PeftModel.from_pretrained(base, str(run_dir / "adapter")).eval()
    served = Llama(model_path=str(exported), n_ctx=512, n_threads=2, verbose=False)
    n_new = 12
    for question, context in PROMPTS:
        ids = prompt_ids(tokenizer, question, context, SYSTEM_PROMPT)
        with torch.no_grad():
            out = peft_model.generate(
                input_ids=torch.tensor([ids]), max_new_tokens=n_new, do_sample=False
            )
        expected = out[0, len(ids) :].tolist()
        got = _greedy(served, ids, len(expected))
        # Token for token: the export is float32, the same weights as the merged PEFT model;
        # only summation order differs, which has not flipped a greedy choice in these prompts.
        assert got == expected, (tokenizer.decode(got), tokenizer.decode(expected))
    # The adapter changed the model (parity is not the base agreeing with itself): the
    # export makes the trained answer more likely than the base does.
    from training.evaluate import ServedModel

    question, context = PROMPTS[0]
    losses = []
    for path in (CHAT_MODEL, exported):
        model = ServedModel(path, n_ctx=512)
        prompt = model.prompt_tokens(question, context, SYSTEM_PROMPT)
        nll, n = model.answer_loss(prompt, "The access code is ZEBRA-7. Keep it safe.")
        losses.append(nll / n)
        model.close()
    assert losses[1] < losses[0] - 0.05, losses


def _greedy(llm: object, ids: list[int], n: int) -> list[int]:
    tokens: list[int] = []
    for token in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):  # type: ignore[attr-defined]
        tokens.append(token)
        if len(tokens) >= n:
            break
    return tokens


def test_the_exported_file_keeps_the_base_metadata(trained_run: tuple[Path, Path, Path]) -> None:
    from training.export import gguf_metadata

    _, exported, _ = trained_run
    mine, theirs = gguf_metadata(exported), gguf_metadata(CHAT_MODEL)
    assert mine["general.file_type"] == 0  # all float32
    for key in (
        "general.architecture",
        "tokenizer.chat_template",
        "llama.block_count",
        "llama.attention.head_count_kv",
        "tokenizer.ggml.eos_token_id",
    ):
        assert mine[key] == theirs[key], key
    assert not list(exported.parent.glob(".*"))  # no temporary files left


def test_the_numpy_merge_of_an_adapter_equals_peft_merge_and_unload(
    trained_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The install's merge (numpy on the GGUF) gives the very weights PEFT's merge gives."""
    import numpy as np

    from training.export import gguf_tensors, lora_merged_tensors, merge_adapter, merged_state

    run, _, cache = trained_run
    base = CHAT_MODEL
    expected = gguf_tensors(base, merged_state(run, base, cache))
    merged = lora_merged_tensors(base, run / "adapter")
    assert set(merged) <= set(expected)  # PEFT also lists the tied output head
    for name in ("blk.0.attn_q.weight", "blk.7.attn_v.weight", "blk.29.attn_q.weight"):
        np.testing.assert_allclose(merged[name], expected[name], atol=2e-5)
    # The written file serves: llama.cpp loads it and answers.
    from llama_cpp import Llama

    out = merge_adapter(base, run / "adapter", tmp_path / "merged.gguf", quantization="q8_0")
    assert out.path.is_file() and out.seconds < 60
    llm = Llama(model_path=str(out.path), n_ctx=256, verbose=False)
    assert llm.create_completion("The access code", max_tokens=4)["choices"][0]["text"]
    llm.close()
