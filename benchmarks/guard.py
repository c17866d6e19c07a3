"""Input guard latency: patterns alone, and patterns + the semantic guard, per message.

    python benchmarks/guard.py [--repeat 3] [--json]

Messages: data/eval/guard_heldout.jsonl and 200 corpus questions. Reports p50/p95 ms of
`InputGuard.check` both ways, and of one raw embedding (the embedder's own encode) as the
yardstick of what the semantic guard adds. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.services import Services
    from assistant.settings import Settings
    from safety.guards import InputGuard

    services = Services(Settings())
    full = services.input_guard
    patterns = InputGuard()
    messages = [
        json.loads(line)["text"]
        for line in (ROOT / "data" / "eval" / "guard_heldout.jsonl").read_text().splitlines()
        if line
    ]
    qa = ROOT.parent / "shared" / "data" / "medical" / "medquad_qa_dev.jsonl"
    if qa.is_file():
        messages += [json.loads(line)["question"] for line in qa.open()][:200]
    embedder = services.embedder
    for text in messages[:20]:  # warm up
        full.check(text)
    timings: dict[str, list[float]] = {"patterns": [], "full": [], "raw_embedding": []}
    for _ in range(args.repeat):
        for text in messages:
            for name, call in (
                ("patterns", lambda t=text: patterns.check(t)),
                ("full", lambda t=text: full.check(t)),
                ("raw_embedding", lambda t=text: embedder.encode([t])),
            ):
                started = time.perf_counter()
                call()
                timings[name].append((time.perf_counter() - started) * 1000)
    figures = {"messages": len(messages), "repeat": args.repeat}
    for name, samples in timings.items():
        p50, p95 = percentiles(samples)
        figures[f"{name}_p50_ms"] = round(p50, 2)
        figures[f"{name}_p95_ms"] = round(p95, 2)
    figures["full_over_raw_embedding_p50"] = round(
        figures["full_p50_ms"] / figures["raw_embedding_p50_ms"], 2
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
