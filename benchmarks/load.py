"""Load: many clients streaming long answers, one account posting adversarial corrections;
the sign-in page and the health check must keep answering.

    python benchmarks/load.py [--clients 16] [--seconds 120] [--max-tokens 256] [--json]

The product runs on loopback (``assistant serve --no-worker --no-ingest``, its own web
settings: threads, rate limits) over a temporary data folder: its own database and accounts,
the index of the product's data folder read through a link, the model files already made
there. Nothing of the product's own data is written.

- ``--clients`` accounts each stream answers through ``/v1/chat/completions`` back to back
  (``max_tokens`` long), for ``--seconds``;
- one more account, signed in through the web form, posts a ``--correction-chars``
  correction made of "a." (the pattern that once took the street-address recognizer
  quadratic time) every 5 seconds on one of its answers;
- a probe asks ``GET /login`` and ``GET /api/health`` in turn, 4 times a second, each on a
  new connection, with a 10 s timeout.

Reports per probe route n, p50/p99/max ms and failures; the streams completed, refused by
the account's rate limit (429) or by a full model queue (503, retried after 2 s, as the
server's Retry-After says), or failed; the corrections' status codes and timings. The last
line with --json is one JSON object. Target (issue 17): /login and /api/health p99 < 1 s
with 16 clients.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving import free_port, http_stream, log, questions_for, start_server  # noqa: E402

PROBE_INTERVAL_S = 0.25
CORRECTION_INTERVAL_S = 5.0
RETRY_S = 2.0  # what the server's Retry-After says (llm.retry_after_s)
PASSWORD = "load-benchmark-password-1"


def quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf[-_]token"[^>]*(?:content|value)="([^"]+)"', html)
    if match is None:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


class Probe(threading.Thread):
    """GET /login and GET /api/health in turn, each on a fresh connection."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.timings: dict[str, list[float]] = {"/login": [], "/api/health": []}
        self.failures: dict[str, int] = {"/login": 0, "/api/health": 0}

    def run(self) -> None:
        import httpx

        routes = list(self.timings)
        turn = 0
        while not self.stop.is_set():
            route = routes[turn % len(routes)]
            turn += 1
            started = time.perf_counter()
            try:
                with httpx.Client(timeout=10) as client:
                    ok = client.get(self.url + route).status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = time.perf_counter() - started
            self.timings[route].append(elapsed)
            self.failures[route] += not ok
            self.stop.wait(max(0.0, PROBE_INTERVAL_S - elapsed))


class Streamer(threading.Thread):
    """One account streaming answers back to back until told to stop."""

    def __init__(
        self, url: str, token: str, questions: list[str], max_tokens: int, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.questions = url, token, questions
        self.max_tokens, self.stop = max_tokens, stop
        self.completed = self.refused = self.busy = self.failed = 0
        self.errors: dict[str, int] = {}

    def run(self) -> None:
        import httpx

        client = httpx.Client(timeout=httpx.Timeout(600, connect=5))
        n = 0
        while not self.stop.is_set():
            question = self.questions[n % len(self.questions)]
            n += 1
            try:
                result = http_stream(client, self.url, self.token, question, self.max_tokens)
            except httpx.HTTPError:
                self.failed += 1
                continue
            if result.get("error") == "http 429":  # the account's rate limit
                self.refused += 1
                self.stop.wait(RETRY_S)
            elif result.get("error") == "http 503":  # the model's queue is full: back off
                self.busy += 1
                self.stop.wait(RETRY_S)
            elif result.get("complete"):
                self.completed += 1
            else:
                self.failed += 1
                reason = str(result.get("error") or "no finish_reason stop")
                self.errors[reason] = self.errors.get(reason, 0) + 1


class Corrector(threading.Thread):
    """Signs in through the web form, asks once, then posts long corrections on that answer."""

    def __init__(
        self, url: str, email: str, question: str, chars: int, stop: threading.Event
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.email, self.question, self.chars = url, email, question, chars
        self.stop = stop
        self.statuses: list[int] = []
        self.timings: list[float] = []
        self.ready = threading.Event()

    def run(self) -> None:
        import httpx

        client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(600, connect=5))
        token = csrf_token(client.get("/login").text)
        client.post("/login", data={"email": self.email, "password": PASSWORD, "csrf_token": token})
        token = csrf_token(client.get("/").text)
        headers = {"X-CSRFToken": token}
        answer = client.post("/api/ask", json={"question": self.question}, headers=headers)
        message_id = answer.json()["message_id"]
        self.ready.set()
        correction = ("a." * self.chars)[: self.chars]
        while not self.stop.is_set():
            started = time.perf_counter()
            response = client.post(
                "/api/feedback",
                json={"message_id": message_id, "rating": -1, "correction": correction},
                headers=headers,
            )
            self.timings.append(time.perf_counter() - started)
            self.statuses.append(response.status_code)
            self.stop.wait(CORRECTION_INTERVAL_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--correction-chars", type=int, default=4000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from assistant.accounts.tokens import create_token
    from assistant.accounts.users import create_user
    from assistant.services import Services
    from assistant.settings import Settings

    product = Settings()
    if not (product.index_dir / "CURRENT").is_file():
        sys.exit("the product's data folder has no index; run `assistant ingest` first")
    workdir = Path(tempfile.mkdtemp(prefix="assistant-load-"))
    (workdir / "index").symlink_to(product.index_dir.resolve(), target_is_directory=True)
    env = dict(
        os.environ,
        ASSISTANT_DATA_DIR=str(workdir),
        ASSISTANT_LLM__QUANTIZED_DIR=str(product.llm.quantized_dir or product.data_dir / "models"),
        ASSISTANT_SERVING__CACHE="off",  # every request generates
        ASSISTANT_LOG_LEVEL="WARNING",
    )
    os.environ.update(env)
    services = Services(Settings())
    services.db.upgrade()
    questions = questions_for(services, 40)
    tokens = []
    for i in range(args.clients):
        email = f"load-{i}@example.org"
        create_user(services.db, email, PASSWORD)
        tokens.append(create_token(services.db, email, "load")[0])
    create_user(services.db, "load-corrector@example.org", PASSWORD)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, env, workdir / "server.log")
    stop = threading.Event()
    figures: dict[str, Any] = {"clients": args.clients, "seconds": args.seconds}
    try:
        import httpx

        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start; see {workdir / 'server.log'}")
            time.sleep(0.5)
        log("server ready; warming up and asking the corrector's question")
        corrector = Corrector(
            url, "load-corrector@example.org", questions[0], args.correction_chars, stop
        )
        corrector.start()
        if not corrector.ready.wait(300):
            sys.exit("the corrector's first answer did not come")
        probe = Probe(url, stop)
        streamers = [
            Streamer(url, token, questions[i:] + questions[:i], args.max_tokens, stop)
            for i, token in enumerate(tokens)
        ]
        probe.start()
        for streamer in streamers:
            streamer.start()
        log(f"{args.clients} clients streaming for {args.seconds:.0f} s")
        time.sleep(args.seconds)
        stop.set()
        probe.join(15)
        corrector.join(30)
        for route, timings in probe.timings.items():
            figures[route] = {
                "n": len(timings),
                "failures": probe.failures[route],
                **quantiles(timings),
            }
        figures["streams"] = {
            "completed": sum(s.completed for s in streamers),
            "refused_429": sum(s.refused for s in streamers),
            "busy_503": sum(s.busy for s in streamers),
            "failed": sum(s.failed for s in streamers),
            "failures": {
                reason: sum(s.errors.get(reason, 0) for s in streamers)
                for reason in sorted({r for s in streamers for r in s.errors})
            },
        }
        figures["corrections"] = {
            "n": len(corrector.statuses),
            "statuses": sorted(set(corrector.statuses)),
            **quantiles(corrector.timings),
        }
    finally:
        stop.set()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    for key, value in figures.items():
        log(f"{key}: {value}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
