"""Grounded answers on questions the model was never trained or tuned on, per model version.

    python benchmarks/answers.py [--split heldout|dev] [--medquad N] [--cuad N] [--models A,B]
                                 [--data-dir DIR] [--json]

Question sets (each through `assistant eval answers`, the product's own evaluation, which
also scores the extractive baseline in the same run):
- medquad / cuad: questions of ../shared/data's dev files about the documents the bootstrap
  dataset never used (md5(doc_id) % 5 == 0; ``--split dev`` takes the training documents
  instead, for tuning);
- consumer: data/eval/medical_consumer_dev.jsonl (150 consumer-style questions, judged page);
- followups: data/eval/followups.jsonl of the split (the first turn answered by the product);
- unanswerable: data/eval/unanswerable.jsonl of the split (invented subjects, absent
  contracts and topics).
Speed: decoding tokens/s of each model's served GGUF in raw llama.cpp on the same prompts
(greedy, the same answer length), as a ratio to the first model.

The last line printed is one JSON object: {set: {model: figures}, "speed": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
EVAL = ROOT / "data" / "eval"
TABLE_KEYS = (
    "rougeL",
    "gold_cited_rate",
    "evidence_cited_rate",
    "unsupported_sentence_rate",
    "degenerate_rate",
    "abstention_rate",
    "model_answer_rate",
    "fallback_rate",
    "p50_ttft_ms",
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def corpus_sample(path: Path, held_out: bool, n: int, seed: int) -> list[dict[str, Any]]:
    from training.held_out import is_held_out

    records = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    chosen = [r for r in records if is_held_out(r["doc_id"]) == held_out]
    random.Random(seed).shuffle(chosen)
    return chosen[:n]


def split_of(path: Path, split: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    return [r for r in records if r.get("split", split) == split]


def question_sets(args: argparse.Namespace, folder: Path) -> dict[str, Path]:
    held_out = args.split == "heldout"
    sets = {
        "medquad": corpus_sample(
            SHARED / "medical" / "medquad_qa_dev.jsonl", held_out, args.medquad, args.seed
        ),
        "cuad": corpus_sample(
            SHARED / "legal" / "cuad_qa_dev.jsonl", held_out, args.cuad, args.seed
        ),
        "consumer": split_of(EVAL / "medical_consumer_dev.jsonl", "dev")[: args.consumer],
        "followups": split_of(EVAL / "followups.jsonl", args.split),
        "unanswerable": split_of(EVAL / "unanswerable.jsonl", args.split),
    }
    paths = {}
    for name, records in sets.items():
        if not records or name in args.skip:
            continue
        path = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        paths[name] = path
    return paths


def evaluate(path: Path, model: str, collection: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "assistant.cli", "eval", "answers", "--qa", str(path)]
    command += ["--model", model, "--json"]
    if collection:
        command += ["--collection", collection]
    env = dict(os.environ, ASSISTANT_LOG_LEVEL="WARNING")
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"eval answers failed on {path.name} with {model}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def decode_speed(files: dict[str, Path], prompts: list[list[dict[str, str]]]) -> dict[str, float]:
    """Greedy decoding tokens/s of each GGUF on the same prompts, the same 96 tokens each."""
    from llama_cpp import Llama

    rates: dict[str, float] = {}
    for name, path in files.items():
        llm = Llama(model_path=str(path), n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
        tokens, seconds = 0, 0.0
        for messages in prompts:
            stream = llm.create_chat_completion(
                messages, max_tokens=96, temperature=0.0, stream=True
            )
            first = None
            count = 0
            for part in stream:
                if part["choices"][0]["delta"].get("content"):
                    count += 1
                    if first is None:
                        first = time.perf_counter()
            if first is not None and count > 1:
                tokens += count - 1
                seconds += time.perf_counter() - first
        llm.close()
        rates[name] = round(tokens / seconds, 2) if seconds else 0.0
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("heldout", "dev"), default="heldout")
    parser.add_argument("--medquad", type=int, default=150)
    parser.add_argument("--cuad", type=int, default=100)
    parser.add_argument("--consumer", type=int, default=150)
    parser.add_argument("--models", default="", help="Version names (default: base and active).")
    parser.add_argument("--skip", default="", help="Sets to leave out, comma separated.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.skip = set(filter(None, args.skip.split(",")))
    if args.data_dir is not None:
        os.environ["ASSISTANT_DATA_DIR"] = str(args.data_dir.resolve())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.llm import registry
    from assistant.services import Services
    from assistant.settings import Settings

    services = Services(Settings())
    services.db.upgrade()
    _ = services.llm  # the shipped model merged and registered, as serving does
    versions = {v.name: v for v in registry.list_versions(services.db)}
    if args.models:
        names = args.models.split(",")
    else:
        base = next(v.name for v in versions.values() if v.kind.value == "base")
        active = registry.active_version(services.db)
        names = [base] + ([active.name] if active and active.name != base else [])
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = question_sets(args, Path(folder))
        for name, path in paths.items():
            results[name] = {}
            for model in names:
                started = time.perf_counter()
                figures = evaluate(path, model, None)
                log(f"{name} / {model}: {time.perf_counter() - started:.0f}s")
                results[name][model] = figures
        prompt_source = paths.get("medquad")
        prompts = []
        if prompt_source is not None:
            questions = [json.loads(line)["question"] for line in prompt_source.open()][:12]
            from assistant.asking.prompts import build_prompt

            pipeline, count = services.pipeline, services.llm.count_tokens
            for question in questions:  # the product's own prompts
                evidence = pipeline.select(question, pipeline.retrieve(question), count)
                prompt = build_prompt(question, evidence, count, services.settings.llm.n_ctx, 256)
                prompts.append(prompt.messages)
    files = {n: versions[n].serving_path for n in names if n in versions}
    from assistant.llm import serving_file

    files = {
        n: serving_file(services.settings.llm, p, services.settings.data_dir)
        for n, p in files.items()
    }
    speed = decode_speed(files, prompts) if prompts else {}
    if speed and names[0] in speed and speed[names[0]]:
        speed = {
            **speed,
            "ratio_to_first": {n: round(r / speed[names[0]], 3) for n, r in speed.items()},
        }
    results["speed_tokens_per_s"] = speed
    for name, by_model in results.items():
        if name == "speed_tokens_per_s":
            continue
        log(f"\n{name} (n={next(iter(by_model.values()))['n']})")
        log(
            f"  {'figure':<27}" + "".join(f"{m[:22]:>24}" for m in by_model) + f"{'extractive':>14}"
        )
        first = next(iter(by_model.values()))
        for key in TABLE_KEYS:
            row = "".join(f"{str(f.get(key)):>24}" for f in by_model.values())
            baseline = first.get("extractive_baseline", {}).get(key, "")
            log(f"  {key:<27}{row}{str(baseline):>14}")
    log(f"\nspeed (tokens/s): {speed}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
