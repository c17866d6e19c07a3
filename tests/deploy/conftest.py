"""The several-machines topology (deploy/topology.py), brought up once for these tests.

Real components only: PostgreSQL, Redis, sshd, HAProxy from Debian, and the product's own
web and worker processes, each in its network namespace, reached through the load balancer.
Skipped, with the reason, only where network namespaces cannot be made or a server binary
is missing (scripts/test.sh installs HAProxy and openssh-server when it can).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from deploy.topology import Topology, TopologyError, down, missing_prerequisites, namespaces_usable

# A load test sends far more ratings from one account than a person may.
LOAD_LIMITS = {
    "ASSISTANT_WEB__FEEDBACK_RATE_LIMIT": "100000 per minute",
    "ASSISTANT_WEB__ASK_RATE_LIMIT": "10000 per minute",
    # Short answers: the scenarios test the deployment, not the writing.
    "ASSISTANT_LLM__MAX_TOKENS": "48",
}
WARM_QUESTION = "What is chronic neutrophilic leukemia?"


def skip_reason() -> str | None:
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    missing = missing_prerequisites()
    if missing:
        return "cannot run the topology here, missing: " + ", ".join(missing)
    refused = namespaces_usable()
    if refused is not None:
        return f"network namespaces are not permitted here: {refused}"
    return None


# Package scope: the hosts (two web servers, a worker, a model server, PostgreSQL...) go
# down after the last deployment test, not at the end of the whole suite.
@pytest.fixture(scope="package")
def topology() -> Iterator[Topology]:
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    topo = Topology()
    try:
        started = time.monotonic()
        try:
            topo.up(LOAD_LIMITS)
        except TopologyError as error:
            pytest.fail(f"the topology did not come up: {error}\n{_log_tails(topo)}")
        print(f"\ntopology up in {time.monotonic() - started:.0f}s")
        # Load the models on both web hosts at once (each loads them on first use).
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda name: signed_in(topo, name).ask(WARM_QUESTION), ("web1", "web2")))
        print(f"models loaded on both web hosts at {time.monotonic() - started:.0f}s")
        yield topo
    finally:
        down(topo.root)


def _log_tails(topo: Topology, lines: int = 15) -> str:
    logs = topo.root / "logs"
    if not logs.is_dir():
        return ""
    parts = []
    for log in sorted(logs.iterdir()):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        parts.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(parts)


@dataclass
class Client:
    """A signed-in browser session against one address (the LB or one web host)."""

    http: httpx.Client

    def ask(self, question: str) -> dict[str, object]:
        response = self.http.post("/api/ask", json={"question": question}, timeout=300)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def close(self) -> None:
        self.http.close()


def signed_in(topo: Topology, host: str = "lb") -> Client:
    """Sign in as the admin through ``host`` (the session cookie is valid on every host:
    they share the secret key)."""
    http = httpx.Client(base_url=topo.url(host), timeout=60)
    page = http.get("/login")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert match, page.text[:500]
    email, password = topo.admin
    response = http.post(
        "/login", data={"email": email, "password": password, "csrf_token": match.group(1)}
    )
    assert response.status_code == 302, response.text[:500]
    return Client(http)


@pytest.fixture
def client(topology: Topology) -> Iterator[Client]:
    made = signed_in(topology)
    yield made
    made.close()


def feedback_rows(topology: Topology, ids: list[int]) -> set[int]:
    """Which of ``ids`` are stored in PostgreSQL (asked from this machine, over the bridge)."""
    import psycopg

    url = topology.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, connect_timeout=5) as connection:
        rows = connection.execute("SELECT id FROM feedback WHERE id = ANY(%s)", (ids,)).fetchall()
    return {row[0] for row in rows}


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f}s"
        time.sleep(0.5)
