"""Failures and changes on the several-machines topology, seen through the load balancer.

(a) a web host killed under load; (b) Redis and PostgreSQL restarted under a stream of
writes; (c) an ingest on the worker host reaching both web hosts; (d) a promotion and a
rollback reaching both. (c) and (d) travel through the artifact store: they run once the
product has its ``artifacts`` settings.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

import httpx
import pytest

from assistant.settings import Settings
from deploy.topology import HOSTS, Topology, namespace_pids
from tests.deploy.conftest import WARM_QUESTION, Client, feedback_rows, signed_in, wait_for

LOAD_THREADS = 6
needs_artifacts = pytest.mark.skipif(
    "artifacts" not in Settings.model_fields,
    reason="artifact store not on this branch yet (no ASSISTANT_ARTIFACTS__* settings): "
    "web hosts with their own data folders cannot see the worker's index or model files",
)


@dataclass(frozen=True)
class Outcome:
    """One request of a load run, timed on this machine's monotonic clock."""

    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all (the connection failed)
    feedback_id: int | None
    served_by: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


def _load_loop(
    client: Client, message_id: int, stop: threading.Event, reads: bool, outcomes: list[Outcome]
) -> None:
    """Alternate a feedback POST and (with ``reads``) a cheap authenticated GET until stopped."""
    http = httpx.Client(base_url=client.http.base_url, cookies=client.http.cookies, timeout=60)
    n = 0
    with http:
        while not stop.is_set():
            n += 1
            post = not reads or n % 2 == 0
            started = time.monotonic()
            try:
                if post:
                    response = http.post(
                        "/api/feedback", json={"message_id": message_id, "rating": 1}
                    )
                else:
                    response = http.get("/api/conversations")
            except httpx.HTTPError:
                outcomes.append(Outcome(started, time.monotonic(), None, None, None))
                continue
            feedback_id = response.json()["id"] if post and response.status_code == 201 else None
            outcomes.append(
                Outcome(
                    started,
                    time.monotonic(),
                    response.status_code,
                    feedback_id,
                    response.headers.get("x-served-by"),
                )
            )


class Load:
    """``threads`` loops of requests through the load balancer, in the background."""

    def __init__(self, client: Client, message_id: int, threads: int, reads: bool) -> None:
        self.stop = threading.Event()
        self.results: list[list[Outcome]] = [[] for _ in range(threads)]
        self.threads = [
            threading.Thread(target=self._run, args=(i, client, message_id, reads))
            for i in range(threads)
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, i: int, client: Client, message_id: int, reads: bool) -> None:
        _load_loop(client, message_id, self.stop, reads, self.results[i])

    def so_far(self) -> list[Outcome]:
        return [o for r in self.results for o in list(r)]

    def finish(self) -> list[Outcome]:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)
        return sorted((o for r in self.results for o in r), key=lambda o: o.started)


def _acknowledged(outcomes: list[Outcome]) -> list[int]:
    return [o.feedback_id for o in outcomes if o.status == 201 and o.feedback_id is not None]


def test_a_web_host_killed_under_load_fails_only_its_requests_in_flight(
    topology: Topology, client: Client
) -> None:
    # Answered from the answer cache (the warm-up asked it): the load needs an answer to rate.
    message_id = int(str(client.ask(WARM_QUESTION)["message_id"]))
    load = Load(client, message_id, LOAD_THREADS, reads=True)
    try:
        time.sleep(4)
        kill_started = time.monotonic()
        topology.kill("web1")  # the whole host at once: its gunicorn master and workers
        killed = time.monotonic()
        # Until its health checks fail, the load balancer may still hand web1 a request.
        deadline = time.monotonic() + 10
        while not topology.backends().get("web1", "").startswith("DOWN"):
            assert time.monotonic() < deadline, topology.backends()
            time.sleep(0.05)
        out_of_rotation = time.monotonic()
        time.sleep(6)
    finally:
        outcomes = load.finish()
    try:
        failed = [o for o in outcomes if not o.ok]
        before = {o.served_by for o in outcomes if o.ended < kill_started and o.ok}
        after = [o for o in outcomes if o.started > out_of_rotation]
        print(
            f"\n{len(outcomes)} requests, {len(failed)} failed "
            f"(status: {Counter(o.status for o in failed)}), "
            f"{sum(o.ended < kill_started for o in outcomes)} before the kill; "
            f"web1 out of rotation {out_of_rotation - kill_started:.2f} s after the kill began"
        )
        assert before == {"web1", "web2"}, "the load was not spread over both hosts"
        # A request can fail only if it was in flight on the killed host: answered after the
        # kill began, and sent before the load balancer took the host out of rotation (one
        # second or two of health checks, in which a client thread may be handed to web1
        # more than once). Everything sent later succeeds.
        assert all(o.started <= out_of_rotation and o.ended >= kill_started for o in failed), (
            f"kill from {kill_started} to {killed}, out of rotation at {out_of_rotation}",
            failed,
        )
        assert after and all(o.ok and o.served_by == "web2" for o in after), [
            o for o in after if not o.ok or o.served_by != "web2"
        ]
        acknowledged = _acknowledged(outcomes)
        assert len(acknowledged) > 20
        assert feedback_rows(topology, acknowledged) == set(acknowledged)
    finally:
        topology.start("web1")
        topology.wait_ready("web1")
        topology.wait_backends_up()


def test_redis_and_postgres_restarted_under_writes_lose_nothing_acknowledged(
    topology: Topology, client: Client
) -> None:
    message_id = int(str(client.ask(WARM_QUESTION)["message_id"]))
    worker_pid = topology.state["pids"]["worker"]  # the same process must survive
    load = Load(client, message_id, 3, reads=False)
    try:
        time.sleep(2)
        topology.kill("redis")  # a crash: the broker's queue and the rate counters go
        time.sleep(1)
        topology.start("redis")
        topology.wait_ready("redis", 30)
        time.sleep(2)
        topology.kill("db")  # a crash (SIGKILL): what was committed must survive it
        down_at = time.monotonic()
        time.sleep(1)
        topology.start("db")
        topology.wait_ready("db", 60)  # crash recovery done
        back_at = time.monotonic()
        wait_for(
            lambda: any(o.started > back_at and o.status == 201 for o in load.so_far()),
            60,
            "a write acknowledged after the restarts",
        )
        recovered_at = time.monotonic()
    finally:
        outcomes = load.finish()
    failed = [o for o in outcomes if not o.ok]
    print(
        f"\n{len(outcomes)} writes, {len(failed)} refused; {back_at - down_at:.1f}s without "
        f"the database, writes acknowledged again {recovered_at - back_at:.1f}s after"
    )
    # During the outage a write is refused with a clear server error (the app's 500, or
    # HAProxy's 503 once the health checks see the database gone), never a client error.
    assert all(o.status is not None and o.status >= 500 for o in failed), failed
    acknowledged = _acknowledged(outcomes)
    assert feedback_rows(topology, acknowledged) == set(acknowledged)
    assert worker_pid in namespace_pids("at-worker"), "the worker did not survive the restarts"


def _sources(answer: dict[str, object]) -> set[str]:
    return {str(s["doc_id"]) for s in answer.get("sources", [])}  # type: ignore[attr-defined]


NEW_DOC = {
    "id": "topology:quellmark-fever",
    "title": "Quellmark fever",
    "source_url": "https://example.org/quellmark-fever",
    "text": "Quellmark fever is a rare illness described only in this test corpus. "
    "The symptoms of Quellmark fever are a violet rash on the palms, a low fever and "
    "ringing in the ears. Quellmark fever is treated with rest and fluids.",
}


def _finds_new_doc(web: Client, question: str) -> bool:
    return NEW_DOC["id"] in _sources(web.ask(question))


@needs_artifacts
def test_an_ingest_on_the_worker_host_reaches_both_web_hosts(topology: Topology) -> None:
    inbox = topology.host_dir("worker") / "inbox"
    inbox.mkdir(exist_ok=True)
    path = inbox / "quellmark.jsonl"
    path.write_text(json.dumps(NEW_DOC) + "\n")
    topology.run_in("worker", ["ingest", str(path), "--collection", "medical"])
    for host in ("web1", "web2"):
        web = signed_in(topology, host)
        question = f"What are the symptoms of Quellmark fever? ({host})"  # not a cache hit
        wait_for(partial(_finds_new_doc, web, question), 90, f"{host} serving the new index")
        web.close()


def _csrf_token(client: Client) -> dict[str, str]:
    """The session's CSRF token, as a page gives it to the browser's scripts."""
    page = client.http.get("/")
    match = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text[:300]
    return {"X-CSRFToken": match.group(1)}


def _served_model(topology: Topology, host: str, token: str) -> str | None:
    """The version that answered through ``host``; None while the model host switches
    versions (a 503 to retry: no answer is put under a version that did not write it)."""
    response = httpx.post(
        f"{topology.url(host)}/v1/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"messages": [{"role": "user", "content": WARM_QUESTION}]},
        timeout=300,
    )
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["model"])


def _serves(topology: Topology, host: str, token: str, name: str) -> bool:
    return _served_model(topology, host, token) == name


@needs_artifacts
def test_a_promotion_and_a_rollback_reach_both_web_hosts(
    topology: Topology, client: Client
) -> None:
    from assistant.storage.db import Database
    from tests.assistant.learning.learning_helpers import TINY_LEARNING, qa_items, seed_feedback

    db = Database(topology.database_url)
    seed_feedback(db, qa_items(6))  # reviewed answers, as the review pages leave them
    db.engine.dispose()
    learning = {f"ASSISTANT_LEARNING__{k.upper()}": str(v) for k, v in TINY_LEARNING.items()}
    topology.run_in("worker", ["learn", "dataset"], env=learning)
    result = json.loads(topology.run_in("worker", ["learn", "train", "--json"], env=learning))
    assert result["promoted"] or result["awaiting_approval"], result
    versions = client.http.get("/api/training/models").json()["models"]
    new = next(v for v in versions if v["name"] == result["model_version"])
    token = topology.run_in("worker", ["create-token", topology.admin[0], "--name", "topology"])
    token = token.strip().splitlines()[-1]
    csrf = _csrf_token(client)
    promoted_at = time.monotonic()  # the gate promoted it as `learn train` ended, or:
    if not result["promoted"]:
        response = client.http.post(
            f"/api/training/models/{new['id']}/promote", json={}, headers=csrf
        )
        assert response.status_code == 200, response.text
    promotion_s = _until_every_host_serves(topology, token, new["name"], promoted_at)
    rolled_back_at = time.monotonic()
    response = client.http.post("/api/training/rollback", json={}, headers=csrf)
    assert response.status_code == 200, response.text
    old = response.json()["name"]
    rollback_s = _until_every_host_serves(topology, token, old, rolled_back_at)
    # The figure for benchmarks/RESULTS.md (the target: every host within 30 s).
    print(
        f"\nevery host on the promoted version after {promotion_s:.1f} s, "
        f"on the rolled-back one after {rollback_s:.1f} s"
    )


def _until_every_host_serves(topology: Topology, token: str, name: str, since: float) -> float:
    """Seconds from ``since`` until the load balancer and both web hosts answer with ``name``."""
    for host in ("lb", "web1", "web2"):
        wait_for(partial(_serves, topology, host, token, name), 90, f"{host} on {name}")
    return time.monotonic() - since


def test_each_server_listens_only_on_its_own_address(topology: Topology) -> None:
    """No server listens on 0.0.0.0 or loopback: traffic goes only over the hosts' addresses."""
    for host in HOSTS:
        listening = subprocess.run(
            ["ip", "netns", "exec", host.netns, "ss", "-ltnH"], capture_output=True, text=True
        ).stdout
        addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines()}
        expected = {host.address} if host.port is not None else set()
        assert addresses == expected, (host.name, listening)
