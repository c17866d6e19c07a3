"""Learning-loop benchmark: the training loop against a raw peft loop, a full cycle for 500
examples, and the served speed of an exported merged model against the base.

    python benchmarks/training.py [--steps 6] [--full-cycle] [--json]

1. steps_per_s_ratio: ``training.train.train`` (the product's loop: LR schedule, clipping,
   progress callback) against a minimal PEFT LoRA loop (AdamW, backward, step) on the same
   encoded batches, same model, same LoRA settings, ``--steps`` optimizer steps each,
   model loading excluded. The two are interleaved (raw, product, raw) and the raw figure
   is the mean of its two runs, so drifting load on shared cores hurts both alike.
2. cycle_seconds_500: 500 reviewed answers (MedQuAD questions with their answer passages)
   -> dataset (Presidio scrubbing, de-duplication) -> LoRA training for the configured epochs
   -> GGUF export (merge, write, quantize) -> the gate (candidate and active scored on the
   validation split and the regression set). Without ``--full-cycle`` the training time is
   estimated from the measured seconds per step times the steps 500 examples take, and the
   gate from the measured seconds per scored item; every other part is measured. The JSON
   says which (``cycle_estimated``).
3. served_speed_ratio: tokens/s of the exported merged GGUF (the product's default
   quantization) against the shipped base GGUF in llama.cpp, greedy, 96 tokens on the same
   prompts, alternating base and candidate twice (median).
The last line printed with --json is one JSON object of all figures.
"""

from __future__ import annotations

import argparse
import json
import math
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

from assistant.asking.prompts import SYSTEM_PROMPT  # noqa: E402
from assistant.infra import jobs  # noqa: E402
from assistant.learning import datasets, folders, runs  # noqa: E402
from assistant.llm import registry  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from training.config import TrainingConfig  # noqa: E402
from training.examples import Example  # noqa: E402

PROMPTS = [
    "What are the symptoms of type 2 diabetes?",
    "How is asthma treated?",
    "Who can terminate the agreement?",
]


def qa_records(n: int) -> list[dict[str, Any]]:
    """``n`` MedQuAD questions with a short answer passage from the shipped corpus."""
    docs: dict[str, dict[str, Any]] = {}
    with (ROOT / "data/corpus/medical/medquad_docs.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            docs[record["id"]] = record
    out = []
    qa = Path("/work/shared/data/medical/medquad_qa_dev.jsonl")
    source = qa if qa.is_file() else ROOT / "tests/data/medquad_qa_sample.jsonl"
    with source.open() as handle:
        for line in handle:
            q = json.loads(line)
            doc = docs.get(q["doc_id"])
            if doc is None:
                continue
            start, end = (
                q["answer_char_start"],
                min(q["answer_char_end"], q["answer_char_start"] + 400),
            )
            out.append({"question": q["question"], "doc": doc, "start": start, "end": end})
            if len(out) >= n:
                break
    return out


def examples_from(records: list[dict[str, Any]]) -> list[Example]:
    return [
        Example(
            r["question"],
            f"[1] {r['doc']['title']}\n{r['doc']['text'][r['start'] : r['end']]}",
            r["doc"]["text"][r["start"] : r["end"]],
        )
        for r in records
    ]


# ---- 1. product loop vs raw peft ---------------------------------------------------------------
def raw_peft_steps_per_s(
    examples: list[Example], config: TrainingConfig, cache: Path, base: Path
) -> float:
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from training.train import batches, encode, load_base

    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_base(base, cache)
    encoded = [
        e for e in (encode(x, tokenizer, SYSTEM_PROMPT, config.max_seq_len) for x in examples) if e
    ]
    data = batches(encoded, config.batch_size, tokenizer.pad_token_id or 0, None)
    model = get_peft_model(
        model,
        LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
        ),
    )
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    started = time.perf_counter()
    for step in range(config.max_steps):
        ids, mask, labels = data[step % len(data)]
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return config.max_steps / (time.perf_counter() - started)


def product_steps_per_s(
    examples: list[Example], config: TrainingConfig, cache: Path, base: Path, out: Path
) -> float:
    from training.train import train

    result = train(config, examples, [], base, out, cache, SYSTEM_PROMPT, progress=lambda *a: None)
    return result.steps_per_s


# ---- 3. served speed -------------------------------------------------------------------------
def tokens_per_s(path: Path, n_tokens: int = 96) -> float:
    from training.evaluate import ServedModel

    model = ServedModel(path, n_ctx=1024)
    try:
        generated, seconds = 0, 0.0
        for prompt in PROMPTS:
            ids = model.prompt_tokens(prompt, "", SYSTEM_PROMPT)
            _, n, took = model.greedy(ids, n_tokens)
            generated, seconds = generated + n, seconds + took
        return generated / seconds
    finally:
        model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="optimizer steps per loop timing")
    parser.add_argument(
        "--full-cycle", action="store_true", help="run the 500-example cycle for real"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    cache_dir = Path(os.environ.get("ASSISTANT_LEARNING__CACHE_DIR", work / "cache"))
    settings = Settings(data_dir=work / "var", learning={"cache_dir": cache_dir})  # type: ignore[call-arg]
    services = Services(settings)
    services.db.upgrade()
    base = settings.llm.model_path
    cache = folders.cache_dir(services)
    figures: dict[str, Any] = {"cpu_count": os.cpu_count()}

    # 1. loops
    from training.train import load_base

    started = time.perf_counter()
    load_base(base, cache)  # the dense copy, made once
    figures["dense_cache_seconds"] = round(time.perf_counter() - started, 1)
    config = TrainingConfig(
        max_steps=args.steps,
        epochs=100,
        batch_size=4,
        max_seq_len=256,
        early_stopping_patience=0,
        warmup_steps=1,
    )
    examples = examples_from(qa_records(4 * args.steps))
    raw_1 = raw_peft_steps_per_s(examples, config, cache, base)
    product = product_steps_per_s(examples, config, cache, base, work / "loop-run")
    raw_2 = raw_peft_steps_per_s(examples, config, cache, base)
    raw = (raw_1 + raw_2) / 2
    figures.update(
        product_steps_per_s=round(product, 4),
        raw_peft_steps_per_s=round(raw, 4),
        steps_per_s_ratio=round(product / raw, 3),
    )
    print("partial:", json.dumps(figures), file=sys.stderr, flush=True)

    # 2. the cycle for 500 examples
    from tests.assistant.learning.learning_helpers import QA, seed_feedback

    records = qa_records(500)
    items = [
        QA(r["question"], r["doc"]["id"], r["doc"]["title"], r["doc"]["text"], r["start"], r["end"])
        for r in records
    ]
    registry.ensure_base_version(services.db, base)
    seed_feedback(services.db, items)
    started = time.perf_counter()
    dataset = datasets.build_dataset(services)
    assert dataset is not None
    dataset_seconds = time.perf_counter() - started
    parts: dict[str, Any] = {
        "dataset_seconds": round(dataset_seconds, 1),
        "n_train": dataset.n_train,
        "n_validation": dataset.n_validation,
    }
    learning_settings = settings.learning
    steps_500 = math.ceil(dataset.n_train / learning_settings.batch_size) * learning_settings.epochs
    if args.full_cycle:
        job_id = jobs.create_job(services.db, "training", {}, None)
        started = time.perf_counter()
        result = runs.train_and_evaluate(services, job_id)
        parts["train_export_gate_seconds"] = round(time.perf_counter() - started, 1)
        cycle = dataset_seconds + parts["train_export_gate_seconds"]
        parts["promoted"] = result["promoted"]
        figures["cycle_estimated"] = False
    else:
        # Training: measured seconds per step at the product's settings, times the steps.
        from training.export import export_run

        step_config = TrainingConfig(
            max_steps=args.steps,
            epochs=100,
            batch_size=learning_settings.batch_size,
            max_seq_len=learning_settings.max_seq_len,
            early_stopping_patience=0,
        )
        from training.datasets import read_examples

        train_examples = read_examples(dataset.path, "train")
        started = time.perf_counter()
        product_steps_per_s(train_examples, step_config, cache, base, work / "cycle-run")
        run_seconds = time.perf_counter() - started
        seconds_per_step = run_seconds / args.steps
        started = time.perf_counter()
        out = work / "cycle.gguf"
        export_run(work / "cycle-run", base, cache, out, learning_settings.quantization)
        export_seconds = time.perf_counter() - started
        # Gate: measured seconds per scored item (both models), times the items scored.
        from training.evaluate import regression_items, score_model

        sample = {"regression": regression_items(limit=3)}
        started = time.perf_counter()
        score_model(base, sample, SYSTEM_PROMPT, max_tokens=learning_settings.eval_max_tokens)
        score_model(out, sample, SYSTEM_PROMPT, max_tokens=learning_settings.eval_max_tokens)
        per_item = (time.perf_counter() - started) / 6
        n_items = (
            min(learning_settings.eval_validation_limit, dataset.n_validation)
            + learning_settings.regression_limit
        )
        gate_seconds = per_item * n_items * 2
        train_seconds = seconds_per_step * steps_500
        parts.update(
            measured_seconds_per_step=round(seconds_per_step, 2),
            steps=steps_500,
            train_seconds_estimated=round(train_seconds, 1),
            export_seconds=round(export_seconds, 1),
            gate_seconds_per_item=round(per_item, 2),
            gate_items=n_items * 2,
            gate_seconds_estimated=round(gate_seconds, 1),
        )
        cycle = dataset_seconds + train_seconds + export_seconds + gate_seconds
        figures["cycle_estimated"] = True
        served = out
    figures["cycle_seconds_500"] = round(cycle, 1)
    figures["cycle_parts"] = parts
    print("partial:", json.dumps(figures), file=sys.stderr, flush=True)

    # 3. served speed of the exported model against the base
    if args.full_cycle:
        active = registry.list_versions(services.db)[0]
        served = active.serving_path
    base_speeds, candidate_speeds = [], []
    for _ in range(2):
        base_speeds.append(tokens_per_s(base))
        candidate_speeds.append(tokens_per_s(served))
    figures.update(
        base_tokens_per_s=round(statistics.median(base_speeds), 2),
        exported_tokens_per_s=round(statistics.median(candidate_speeds), 2),
        served_speed_ratio=round(
            statistics.median(candidate_speeds) / statistics.median(base_speeds), 3
        ),
        exported_quantization=learning_settings.quantization,
    )
    if not args.json:
        for key, value in figures.items():
            print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
