"""Batched serving benchmark: one stream at a time (LocalLLM) against llama-server's slots.

In one run, with the same GGUF, prompts, sampling and threads:
1. at each client count (``--clients``, default 1,4,16), every client sends
   ``--requests`` answers back to back, first to today's one-stream mode (LocalLLM behind the
   Scheduler, capacity 1), then to the batched mode (BatchedLLM: llama-server with
   ``--parallel`` slots, the Scheduler admitting that many): aggregate generated tokens/s and
   the p50/p95 wait from request to first token (the queue plus the prompt);
2. single-stream decode tokens/s of raw ``llama_cpp.Llama`` against the batched mode at one
   client, alternating answer by answer, ``--rounds`` times (first token to last, so the
   prompt is left out).

    python benchmarks/batched_serving.py [--clients 1,4,16] [--parallel 4] [--json]

The batched mode needs llama-server (scripts/build-llama-server.sh). With --json the last line
is one JSON object. Timings depend on what else runs on the machine: compare ratios taken in
the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOPICS = [
    "asthma", "diabetes", "hypertension", "migraine", "anemia", "arthritis", "bronchitis",
    "eczema", "glaucoma", "gout", "hepatitis", "influenza", "lupus", "malaria", "measles",
    "pneumonia", "psoriasis", "scoliosis", "shingles", "tinnitus", "tuberculosis", "vertigo",
]  # fmt: skip
SYSTEM = "You answer medical questions in plain language."

Stream = Callable[[int, int], Iterator[str]]  # (request number, max_tokens) -> pieces


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def messages_for(i: int) -> list[dict[str, str]]:
    topic = TOPICS[i % len(TOPICS)]
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Describe {topic}: its causes, symptoms and treatments."},
    ]


def one_request(stream: Stream, i: int, max_tokens: int) -> dict[str, float]:
    started = time.perf_counter()
    first = last = None
    tokens = 0
    for _piece in stream(i, max_tokens):
        last = time.perf_counter()
        if first is None:
            first = last
        tokens += 1
    assert first is not None and last is not None, "an empty answer"
    return {"wait": first - started, "tokens": tokens, "decode_s": last - first}


def load(stream: Stream, clients: int, requests: int, max_tokens: int) -> dict[str, Any]:
    """``clients`` threads, each sending ``requests`` answers back to back."""
    results: list[dict[str, float]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        for r in range(requests):
            try:
                result = one_request(stream, c * requests + r, max_tokens)
            except BaseException as exc:  # counted, the run goes on
                with lock:
                    errors.append(exc)
                continue
            with lock:
                results.append(result)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    waits = sorted(r["wait"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    return {
        "clients": clients,
        "answers": len(results),
        "errors": len(errors),
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "p50_wait_s": round(statistics.median(waits), 2) if waits else None,
        "p95_wait_s": round(percentile(waits, 0.95), 2) if waits else None,
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def raw_stream(llama: Any, settings: Any, i: int, max_tokens: int) -> Iterator[str]:
    for part in llama.create_chat_completion(
        messages=messages_for(i),
        stream=True,
        max_tokens=max_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        repeat_penalty=settings.repeat_penalty,
        seed=settings.seed,
    ):
        text = part["choices"][0]["delta"].get("content")
        if text:
            yield text


def decode_rate(runs: list[dict[str, float]]) -> float:
    """Tokens/s from first token to last over ``runs`` (the first token is the prompt's)."""
    return sum(r["tokens"] - 1 for r in runs) / sum(r["decode_s"] for r in runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16", help="client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=2, help="answers per client")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--parallel", type=int, default=4, help="llama-server slots")
    parser.add_argument("--rounds", type=int, default=6, help="raw vs batched single streams")
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: served Q8_0)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from llama_cpp import Llama

    from assistant.llm import BatchedLLM, LocalLLM, Scheduler, serving_file
    from assistant.settings import LLMSettings

    clients = [int(c) for c in args.clients.split(",")]
    base = LLMSettings(queue_size=64, queue_timeout_s=3600, parallel=args.parallel)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or serving_file(base, base.model_path, Path(folder))
        settings = base.model_copy(update={"model_path": model, "requantize": "off"})
        log(f"model {model.name}, {settings.n_threads} threads, {args.parallel} slots")
        local = LocalLLM(settings, scheduler=Scheduler(64, 3600, capacity=1))
        batched = BatchedLLM(settings, scheduler=Scheduler(64, 3600, capacity=args.parallel))
        try:

            def one_stream(i: int, max_tokens: int) -> Iterator[str]:
                return local.stream_chat(messages_for(i), max_tokens=max_tokens)

            def batch(i: int, max_tokens: int) -> Iterator[str]:
                return batched.stream_chat(messages_for(i), max_tokens=max_tokens)

            levels = []
            for n in clients:
                one = load(one_stream, n, args.requests, args.max_tokens)
                log(f"one-stream {n:>2} clients: {one}")
                many = load(batch, n, args.requests, args.max_tokens)
                log(f"batched    {n:>2} clients: {many}")
                levels.append(
                    {
                        "clients": n,
                        "one_stream": one,
                        "batched": many,
                        "tokens_per_s_ratio": round(many["tokens_per_s"] / one["tokens_per_s"], 2),
                    }
                )
            local.close()
            # Single stream, prompt left out: raw llama.cpp against the batched server.
            raw_llama = Llama(
                str(model),
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                seed=settings.seed,
                verbose=False,
            )

            def raw(i: int, max_tokens: int) -> Iterator[str]:
                return raw_stream(raw_llama, settings, i, max_tokens)

            raw_runs, batched_runs = [], []
            for r in range(args.rounds):
                raw_runs.append(one_request(raw, r, args.max_tokens * 2))
                batched_runs.append(one_request(batch, r, args.max_tokens * 2))
            raw_llama.close()
        finally:
            batched.close()
    raw_rate, batched_rate = decode_rate(raw_runs), decode_rate(batched_runs)
    log(f"single stream decode: raw {raw_rate:.1f} tokens/s, batched {batched_rate:.1f}")
    top = next((lv for lv in levels if lv["clients"] == max(clients)), levels[-1])
    figures = {
        "model": model.name,
        "threads": settings.n_threads,
        "parallel": args.parallel,
        "max_tokens": args.max_tokens,
        "requests_per_client": args.requests,
        "levels": levels,
        "raw_decode_tokens_per_s": round(raw_rate, 1),
        "batched_decode_tokens_per_s": round(batched_rate, 1),
        "single_stream_ratio": round(batched_rate / raw_rate, 3),
        "top_clients": top["clients"],
        "top_tokens_per_s_ratio": top["tokens_per_s_ratio"],
        "top_batched_p95_wait_s": top["batched"]["p95_wait_s"],
    }
    print(json.dumps(figures) if args.json else json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
