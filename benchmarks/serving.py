"""Serving benchmark: raw llama-cpp-python against the product's HTTP streaming path.

In one run, with the same model file, prompts, sampling and threads:
1. raw ``Llama.create_chat_completion(stream=True)`` on the product's final RAG prompts, then
   the same questions through ``POST /v1/chat/completions`` (stream) of a real server
   (``assistant serve`` on loopback), alternating turn by turn, ``--rounds`` times: decode
   tokens/s ratio (over all rounds, and each round's) and TTFT overhead p50;
2. the TTFT of those RAG turns against the old baseline: the shipped Q4_1 file, whole
   passages in the prompt, no prefix reuse (a fresh context every turn);
3. a load run: N concurrent clients sending M streamed requests in all (small max_tokens),
   with a model switch (and a switch back) in the middle: errors, incomplete streams, p95
   queue wait (the server's /metrics), aggregate tokens/s against raw single-stream on the
   same requests.

    python benchmarks/serving.py [--data-dir DIR] [--clients 16] [--requests 200] [--json]

DIR needs an index (`assistant ingest ...`); the last line with --json is one JSON object.
Timings depend on what else runs on the machine: compare ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS_FILE = ROOT / "data" / "corpus" / "medical" / "medquad_docs.jsonl"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def questions_for(services: Any, n: int) -> list[str]:
    """Questions about documents in the index ("What is <title>?"), one per document."""
    version = services.index.current()
    titles: list[str] = []
    for chunk in version.chunks:
        if chunk.collection == "medical" and chunk.title not in titles:
            titles.append(chunk.title)
        if len(titles) >= n:
            break
    return [f"What are the symptoms and treatments of {t}?" for t in titles]


def raw_stream(
    llama: Any, messages: list[dict[str, str]], settings: Any, max_tokens: int
) -> dict[str, float]:
    started = time.perf_counter()
    first = None
    tokens = 0
    for part in llama.create_chat_completion(
        messages=messages,
        stream=True,
        max_tokens=max_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        repeat_penalty=settings.repeat_penalty,
        seed=settings.seed,
    ):
        if part["choices"][0]["delta"].get("content"):
            tokens += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    first = first or end
    return {
        "ttft": first - started,
        "tokens": tokens,
        "decode_s": end - first,
        "total": end - started,
    }


def rate(results: list[dict[str, Any]]) -> float:
    """Decode tokens/s over streamed turns (the first token belongs to TTFT)."""
    tokens = sum(max(0, r["tokens"] - 1) for r in results)
    seconds = sum(r["decode_s"] for r in results)
    return tokens / seconds if seconds else 0.0


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children (Linux).

    The server is a gunicorn master with its worker as a child: the worker does the work.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in children.read_text().split():
            seconds += process_cpu_s(int(child))
    return seconds


def is_disclaimer(text: str, disclaimers: Sequence[str]) -> bool:
    """Whether a streamed piece is the product's disclaimer, sent after the model's answer."""
    if not text.startswith("\n\n"):
        return False
    rest = text
    for disclaimer in disclaimers:
        rest = rest.replace(disclaimer, "")
    return rest != text and not rest.strip()


def http_stream(
    client: Any,
    url: str,
    token: str,
    question: str,
    max_tokens: int | None,
    disclaimers: Sequence[str] = (),
) -> dict[str, Any]:
    """One streamed answer through /v1/chat/completions.

    ``decode_s`` runs from the first to the last *model* token, as for raw llama.cpp; the
    disclaimer the product appends and the checks after the answer (PII pass, output
    guard, storing the turn) are timed apart, as ``finish_s`` (last model token to
    ``[DONE]``).
    """
    body: dict[str, Any] = {"messages": [{"role": "user", "content": question}], "stream": True}
    started = time.perf_counter()
    first = last = None
    tokens = 0
    done = finished = False
    model = ""
    error = None
    with client.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        if response.status_code != 200:
            return {"error": f"http {response.status_code}", "complete": False}
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                error = chunk["error"].get("code")
                continue
            choice = chunk["choices"][0]
            content = choice["delta"].get("content")
            if content and not is_disclaimer(content, disclaimers):
                tokens += 1
                last = time.perf_counter()
                if first is None:
                    first = last
            if choice.get("finish_reason") == "stop":
                finished = True
                model = chunk.get("model", "")
    end = time.perf_counter()
    first = first or end
    last = last or end
    return {
        "ttft": first - started,
        "tokens": tokens,
        "decode_s": last - first,
        "finish_s": end - last,
        "total": end - started,
        "complete": done and finished and error is None,
        "error": error,
        "model": model,
    }


def histogram_quantile(metrics_text: str, name: str, q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of a Prometheus histogram."""
    buckets = []
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}_bucket"):
            label = line.split('le="')[1].split('"')[0]
            buckets.append(
                (float("inf") if label == "+Inf" else float(label), float(line.split()[-1]))
            )
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return None


def start_server(
    port: int, env: dict[str, str], log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """The product (web only, no worker, no ingest) on a loopback port; its output goes to
    ``log_path`` (or nowhere)."""
    command = [sys.executable, "-m", "web.cli", "serve", "--no-worker", "--no-ingest"]
    output = log_path.open("wb") if log_path is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=str(ROOT),
            stdout=output,
            stderr=subprocess.STDOUT if log_path is not None else subprocess.DEVNULL,
        )
    finally:
        if log_path is not None:
            output.close()  # type: ignore[union-attr]  # the child keeps its own copy


def queue_wait_p95(metrics_text: str) -> dict[str, float | None]:
    """The p95 queue wait; past the histogram's last finite bucket only a lower bound is
    known, reported as ``..._above_s`` (JSON has no Infinity)."""
    p95 = histogram_quantile(metrics_text, "assistant_queue_wait_seconds", 0.95)
    if p95 is None or p95 != float("inf"):
        return {"load_queue_wait_p95_s": p95}
    bounds = [
        float(line.split('le="')[1].split('"')[0])
        for line in metrics_text.splitlines()
        if line.startswith("assistant_queue_wait_seconds_bucket") and 'le="+Inf"' not in line
    ]
    return {"load_queue_wait_p95_s": None, "load_queue_wait_p95_above_s": max(bounds, default=0)}


def product_prompt(services: Any, question: str, count: Any, n_ctx: int, max_tokens: int) -> Any:
    """The prompt the product builds for ``question``: its evidence, in its layout."""
    from assistant.asking.prompts import build_prompt

    pipeline = services.pipeline
    evidence = pipeline.select(question, pipeline.retrieve(question), count)
    return build_prompt(question, evidence, count, n_ctx, max_tokens)


def whole_passages_prompt(services: Any, question: str, count: Any) -> list[dict[str, str]]:
    """The retrieved passages whole, numbered (the layout before evidence selection)."""
    from training.prompt_format import chat_messages, evidence_block

    hits = services.index.search(question, services.settings.retrieval.top_k, None)
    block = evidence_block([(i + 1, h.chunk.title, h.chunk.text) for i, h in enumerate(hits)])
    return chat_messages(question, block)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="Data folder with an index.")
    parser.add_argument("--turns", type=int, default=6, help="RAG turns for raw vs HTTP.")
    parser.add_argument("--max-tokens", type=int, default=64, help="Answer cap for raw vs HTTP.")
    parser.add_argument(
        "--rounds", type=int, default=1, help="Times the raw vs HTTP turns are repeated."
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--load-max-tokens", type=int, default=8)
    parser.add_argument(
        "--segments", type=int, default=4, help="Load segments, the raw yardstick between."
    )
    parser.add_argument("--no-switch", action="store_true", help="No model switch in the load run.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.data_dir is not None:
        os.environ["ASSISTANT_DATA_DIR"] = str(args.data_dir.resolve())
    # The product as configured, except: no answer cache (every request generates) and the
    # answer cap of the comparison.
    os.environ["ASSISTANT_SERVING__CACHE"] = "off"
    os.environ["ASSISTANT_LLM__MAX_TOKENS"] = str(args.max_tokens)

    import httpx
    from llama_cpp import Llama

    from assistant.accounts.tokens import create_token
    from assistant.asking.prompts import SYSTEM_PROMPT
    from assistant.llm import registry, serving_file
    from assistant.services import Services
    from assistant.settings import Settings
    from assistant.storage import models
    from assistant.storage.models import ModelKind

    settings = Settings()
    services = Services(settings)
    services.db.upgrade()
    llm_settings = settings.llm
    served_file = serving_file(llm_settings, Path(llm_settings.model_path), settings.data_dir)
    registry.ensure_base_version(services.db, Path(llm_settings.model_path))
    questions = questions_for(services, max(args.turns, 12))
    if len(questions) < args.turns:
        sys.exit("the index holds too few medical documents; ingest some first")

    # The product's final prompts for the turns (same retrieval, same budget, same model).
    probe = Llama(
        model_path=str(served_file),
        n_ctx=llm_settings.n_ctx,
        n_threads=llm_settings.n_threads,
        n_threads_batch=llm_settings.n_threads,
        n_gpu_layers=llm_settings.n_gpu_layers,
        seed=llm_settings.seed,
        verbose=False,
    )

    def count(text: str) -> int:
        return len(probe.tokenize(text.encode(), add_bos=False, special=False))

    turns = questions[: args.turns]
    prompts, old_prompts, prompt_tokens = [], [], []
    for question in turns:
        prompt = product_prompt(services, question, count, probe.n_ctx(), args.max_tokens)
        prompts.append(prompt.messages)
        full = whole_passages_prompt(services, question, count)
        # The old layout: whole passages inside the system prompt.
        listing = full[1]["content"].rsplit("\n\nQuestion: ", 1)[0]
        old_prompts.append(
            [
                {"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{listing}"},
                {"role": "user", "content": question},
            ]
        )
        prompt_tokens.append(count(full[0]["content"]) + count(full[1]["content"]))

    # The server: the product on loopback, one process, enough threads for every client.
    port = free_port()
    env = dict(
        os.environ,
        ASSISTANT_WEB__THREADS=str(max(8, args.clients + 4)),
        ASSISTANT_LOG_LEVEL="WARNING",
    )
    server = start_server(port, env)
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {}
    try:
        with services.db.session() as session:
            session.add(models.User(email=f"bench-{port}@example.org", password_hash="x"))
        token, _ = create_token(services.db, f"bench-{port}@example.org", "benchmark")
        client = httpx.Client(timeout=httpx.Timeout(600, connect=5))
        deadline = time.monotonic() + 300
        while True:
            try:
                if client.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("the server did not start")
            time.sleep(0.5)
        # Warm up the server's models (LLM, embedder, PII engine) with one request.
        http_stream(client, url, token, "What is asthma?", None)
        log("server ready; raw vs HTTP turns")

        disclaimers = list(settings.safety.disclaimers.values())
        raw_results, http_results, baseline = [], [], []
        round_ratios = []
        # Raw and HTTP alternate turn by turn, and whole rounds repeat: on a 2-core machine
        # the decode rate itself drifts from minute to minute, so one round's ratio is noisy.
        cpu = {"raw_self": 0.0, "http_self": 0.0, "http_server": 0.0}
        for _ in range(args.rounds):
            raw_round, http_round = [], []
            for question, messages in zip(turns, prompts, strict=True):
                started = time.process_time()
                raw_round.append(raw_stream(probe, messages, llm_settings, args.max_tokens))
                cpu["raw_self"] += time.process_time() - started
                started, server_started = time.process_time(), process_cpu_s(server.pid)
                http_round.append(http_stream(client, url, token, question, None, disclaimers))
                cpu["http_self"] += time.process_time() - started
                cpu["http_server"] += process_cpu_s(server.pid) - server_started
            round_ratios.append(round(rate(http_round) / max(rate(raw_round), 1e-9), 3))
            raw_results += raw_round
            http_results += http_round
        old = Llama(
            model_path=str(llm_settings.model_path),
            n_ctx=llm_settings.n_ctx,
            n_threads=llm_settings.n_threads,
            n_threads_batch=llm_settings.n_threads,
            seed=llm_settings.seed,
            verbose=False,
        )
        for messages in old_prompts:
            old.reset()  # no prefix reuse: the baseline reads every prompt whole
            baseline.append(raw_stream(old, messages, llm_settings, 1))
        del old

        raw_ttft = [r["ttft"] * 1000 for r in raw_results]
        http_ttft = [r["ttft"] * 1000 for r in http_results]
        base_ttft = [r["ttft"] * 1000 for r in baseline]
        finish_ms = [r["finish_s"] * 1000 for r in http_results]
        figures.update(
            raw_tokens_per_s=round(rate(raw_results), 2),
            http_tokens_per_s=round(rate(http_results), 2),
            tokens_per_s_ratio=round(rate(http_results) / rate(raw_results), 3)
            if rate(raw_results)
            else None,
            tokens_per_s_ratio_by_round=round_ratios,
            tokens_per_s_ratio_median_round=statistics.median(round_ratios),
            raw_tokens=sum(r["tokens"] for r in raw_results),
            # Where the CPU goes, per generated token: raw llama.cpp in this process; the
            # server process (llama.cpp plus the web path) and this client on HTTP turns.
            cpu_ms_per_token={
                name: round(seconds * 1000 / max(1, sum(r["tokens"] for r in raw_results)), 2)
                for name, seconds in cpu.items()
            },
            http_tokens=sum(r["tokens"] for r in http_results),
            http_finish_p50_ms=round(statistics.median(finish_ms), 1),
            raw_ttft_p50_ms=round(statistics.median(raw_ttft), 1),
            http_ttft_p50_ms=round(statistics.median(http_ttft), 1),
            ttft_overhead_p50_ms=round(
                statistics.median(h - r for h, r in zip(http_ttft, raw_ttft, strict=True)), 1
            ),
            baseline_prompt_tokens_p50=statistics.median(prompt_tokens),
            baseline_ttft_p50_ms=round(statistics.median(base_ttft), 1),
            rag_ttft_ratio_vs_baseline=round(
                statistics.median(http_ttft) / statistics.median(base_ttft), 3
            ),
        )
        log(json.dumps(figures))

        # Raw single stream on load-sized requests (a sample), the load run's yardstick. The
        # load runs in segments with the yardstick measured before each and after the last,
        # and averaged: the machine's speed drifts over the minutes the load run takes (seen
        # here: 26% between a sample before it and one after it).
        load_questions = [questions[i % len(questions)] for i in range(args.requests)]
        sample_prompts = []
        for question in load_questions[: min(12, args.requests)]:
            prompt = product_prompt(services, question, count, probe.n_ctx(), args.load_max_tokens)
            sample_prompts.append(prompt.messages)

        def raw_single_stream_rate() -> float:
            sample = [
                raw_stream(probe, messages, llm_settings, args.load_max_tokens)
                for messages in sample_prompts
            ]
            return sum(r["tokens"] for r in sample) / sum(r["total"] for r in sample)

        # The load run: the server now caps answers at load_max_tokens.
        server.terminate()
        server.wait(30)
        env["ASSISTANT_LLM__MAX_TOKENS"] = str(args.load_max_tokens)
        server = start_server(port, env)
        while True:
            try:
                if client.get(f"{url}/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        http_stream(client, url, token, "What is asthma?", None)
        log(f"load run: {args.clients} clients, {args.requests} requests")
        switched: dict[str, Any] = {}
        done_count = [0]
        lock = threading.Lock()

        def switcher() -> None:
            # Halfway: a new version goes live; at three quarters: roll back. It serves the
            # raw side's file: the shipped Q4_1 file here read prompts 1.6x slower and
            # cost the load ratio 0.08, a yardstick measured on another model.
            while done_count[0] < args.requests // 2:
                time.sleep(0.2)
            name = f"bench-switch-{port}"
            version = registry.register_version(
                services.db, name, kind=ModelKind.MERGED, base_path=served_file
            )
            registry.activate_version(services.db, version.id, reason="promote")
            switched["to"] = name
            while done_count[0] < (3 * args.requests) // 4:
                time.sleep(0.2)
            registry.rollback(services.db)
            switched["back"] = True
            # The benchmark leaves the product's registry as it found it.
            registry.forget_version(services.db, version.id)

        def one(question: str) -> dict[str, Any]:
            try:
                result = http_stream(client, url, token, question, None, disclaimers)
            except Exception as exc:  # a failed request is counted, not raised
                result = {"error": type(exc).__name__, "complete": False}
            with lock:
                done_count[0] += 1
            return result

        switch_thread = None
        if not args.no_switch:
            switch_thread = threading.Thread(target=switcher, daemon=True)
            switch_thread.start()
        segments = max(1, min(args.segments, args.requests))
        bounds = [round(i * len(load_questions) / segments) for i in range(segments + 1)]
        raw_rates: list[float] = []
        results: list[dict[str, Any]] = []
        wall = 0.0  # the load's own time, without the yardstick's
        with ThreadPoolExecutor(args.clients) as pool:
            for first, end in itertools.pairwise(bounds):
                raw_rates.append(raw_single_stream_rate())  # the server is idle meanwhile
                started = time.perf_counter()
                results += list(pool.map(one, load_questions[first:end]))
                wall += time.perf_counter() - started
        raw_rates.append(raw_single_stream_rate())
        metrics_text = client.get(f"{url}/metrics").text
        raw_single_tps = statistics.mean(raw_rates)
        errors = [r.get("error") for r in results if r.get("error")]
        incomplete = sum(not r.get("complete") for r in results)
        tokens = sum(r.get("tokens", 0) for r in results)
        models_seen = sorted({r.get("model", "") for r in results if r.get("model")})
        figures.update(
            load_clients=args.clients,
            load_requests=len(results),
            load_errors=len(errors),
            load_error_kinds=dict(collections.Counter(str(e) for e in errors)),
            load_incomplete_streams=incomplete,
            **queue_wait_p95(metrics_text),
            load_aggregate_tokens_per_s=round(tokens / wall, 2),
            raw_single_stream_tokens_per_s=round(raw_single_tps, 2),
            raw_single_stream_by_segment=[round(rate, 2) for rate in raw_rates],
            load_tokens_per_s_ratio=round(tokens / wall / raw_single_tps, 3)
            if raw_single_tps
            else None,
            load_wall_s=round(wall, 1),
            switch=(
                "none"
                if args.no_switch
                else f"{switched.get('to')} then back"
                if switched.get("back")
                else "incomplete"
            ),
            models_served=models_seen,
        )
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        services.close()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>32}: {value}")


if __name__ == "__main__":
    main()
