"""The several-machines deployment of docs/deployment.md, run on one machine.

Each host is a Linux network namespace on one bridge (10.77.0.0/24); every server binds only
its own namespace's address, so the hosts reach each other only over that network, as
separate machines would:

    10.77.0.1   the bridge: this machine, standing for the operator and the clients
    10.77.0.2   lb       HAProxy on :80, checking the web hosts' /api/ready
    10.77.0.11  web1     `assistant serve --no-worker --no-ingest` on :8000
    10.77.0.12  web2     the same
    10.77.0.21  worker   `assistant worker` (Celery worker + beat)
    10.77.0.31  model    `assistant model-server` on :8080: llama-server with the active version
    10.77.0.41  db       PostgreSQL, its own cluster (initdb), run as the postgres user
    10.77.0.42  redis    Redis: the Celery broker and the rate-limit counters
    10.77.0.43  store    OpenSSH's sshd serving SFTP only: the artifact store

Why this layout:
- Namespaces, not containers: the product runs unchanged from this checkout and its
  virtual environment (installed packages, the base GGUF, are shared read-only, like a
  machine image); what the hosts do not share is their network and their data folders.
- Everything the topology makes lives under one state folder (default
  /tmp/assistant-topology), each product host with its own ``ASSISTANT_DATA_DIR``. They share
  only what the settings name: the database, the broker, the artifact store, the secret key
  and the PII hash key (a copy per host, as a deployment would install it), and the release's
  model files (``models/``, made once by ``up`` like an install step, at one path everywhere).
- ``down`` finds what to stop by the namespaces' name prefix (``ip netns pids``), not by
  pid files, so it cleans up after a crash of ``up``, of a test run or of this machine's
  processes, and it is idempotent.
- The logic is Python (stdlib only) so the tests drive the very code an operator runs
  (kill a web host, restart PostgreSQL); ``scripts/topology.sh up|down|status`` wraps it.

Index versions, trained model versions, datasets and uploads travel through the artifact
store (SFTP on the store host): the worker publishes what it builds, and the web hosts fetch
it (``ASSISTANT_ARTIFACTS__*``, docs/deployment.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "at-"  # every namespace and link of the topology: what `down` looks for
BRIDGE = f"{PREFIX}br0"
SUBNET_PREFIX = 24
CLIENT_ADDRESS = "10.77.0.1"  # the bridge: tests and the operator
DEFAULT_ROOT = Path(os.environ.get("ASSISTANT_TOPOLOGY_DIR", "/tmp/assistant-topology"))
# Files derived only from installed packages (the embedder's ONNX export, the shipped adapter
# merged into the base GGUF): a minute of CPU on two cores, kept between runs like pip's
# wheel cache. Never state: `down` leaves it, and deleting it only costs that minute again.
DEFAULT_CACHE = Path(
    os.environ.get(
        "ASSISTANT_TOPOLOGY_CACHE", Path.home() / ".cache" / "domain-assistant" / "topology"
    )
)
REPO = Path(__file__).resolve().parent.parent
WEB_PORT = 8000
LB_PORT = 80
MODEL_PORT = 8080
ARTIFACTS_USER = "assistant-artifacts"
DB_NAME = DB_USER = "assistant"


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    role: str
    port: int | None = None  # the port its server listens on (readiness and status)

    @property
    def netns(self) -> str:
        return PREFIX + self.name


HOSTS: tuple[Host, ...] = (
    Host("lb", "10.77.0.2", "lb", LB_PORT),
    Host("web1", "10.77.0.11", "web", WEB_PORT),
    Host("web2", "10.77.0.12", "web", WEB_PORT),
    Host("worker", "10.77.0.21", "worker"),
    Host("model", "10.77.0.31", "model", MODEL_PORT),
    Host("db", "10.77.0.41", "postgres", 5432),
    Host("redis", "10.77.0.42", "redis", 6379),
    Host("store", "10.77.0.43", "store", 22),
)
BY_NAME = {h.name: h for h in HOSTS}
PRODUCT_ROLES = ("web", "worker", "model")
# Started in this order: the servers the product needs first, the load balancer last.
START_ORDER = ("db", "redis", "store", "worker", "web1", "web2", "lb")


class TopologyError(RuntimeError):
    """Something the topology needs is missing or did not come up."""


def run(
    argv: list[str], netns: str | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command (in a namespace), failing with its output when it fails."""
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    kwargs.setdefault("check", True)
    try:
        return subprocess.run(argv, capture_output=True, text=True, **kwargs)
    except subprocess.CalledProcessError as error:
        raise TopologyError(
            f"{' '.join(argv)} failed ({error.returncode}): {error.stderr or error.stdout}"
        ) from None


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the topology (empty: it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    for tool in ("ip", "haproxy", "redis-server", "ssh-keygen", "setpriv"):
        if shutil.which(tool) is None:
            missing.append(tool)
    if not Path("/usr/sbin/sshd").is_file():
        missing.append("sshd (openssh-server)")
    if postgres_bin() is None:
        missing.append("PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")
    if llama_server_binary() is None:
        missing.append("llama-server (scripts/build-llama-server.sh)")
    return missing


def postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    return found[-1].parent if found else None


def namespaces_usable() -> str | None:
    """None when a network namespace can be made here, else why not."""
    probe = f"{PREFIX}probe-{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return result.stderr.strip() or "ip netns add failed"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


# ---- the network -------------------------------------------------------------------------------
def make_network() -> None:
    """The bridge with the client's address, one namespace per host joined by a veth pair."""
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    run(["ip", "addr", "add", f"{CLIENT_ADDRESS}/{SUBNET_PREFIX}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    for host in HOSTS:
        outside, inside = host.netns, f"{host.netns}-p"  # interface names: 15 characters at most
        run(["ip", "netns", "add", host.netns])
        run(["ip", "link", "add", outside, "type", "veth", "peer", "name", inside])
        run(["ip", "link", "set", inside, "netns", host.netns])
        run(["ip", "link", "set", outside, "master", BRIDGE, "up"])
        ns = ["ip", "-n", host.netns]
        run([*ns, "link", "set", inside, "name", "eth0"])
        run([*ns, "addr", "add", f"{host.address}/{SUBNET_PREFIX}", "dev", "eth0"])
        run([*ns, "link", "set", "eth0", "up"])
        run([*ns, "link", "set", "lo", "up"])


def our_namespaces() -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(PREFIX)]


def our_links() -> list[str]:
    """The bridge and the host ends of the veth pairs left in this namespace."""
    listed = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = (line.split(": ")[1].split("@")[0] for line in listed.splitlines() if ": " in line)
    return [name for name in names if name.startswith(PREFIX)]


def namespace_pids(netns: str) -> list[int]:
    listed = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout
    return [int(p) for p in listed.split()]


def kill_pids(pids: list[int], grace_s: float) -> None:
    """SIGTERM, then SIGKILL whatever still runs after ``grace_s``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child not reaped yet) no longer runs.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            return False
    return True


def down(root: Path = DEFAULT_ROOT) -> None:
    """Stop every process in the topology's namespaces, remove them, the bridge and ``root``.

    Safe to run at any time, any number of times: it looks for what exists, not for what a
    state file says was started.
    """
    namespaces = our_namespaces()
    pids = sorted({pid for ns in namespaces for pid in namespace_pids(ns)})
    kill_pids(pids, grace_s=5.0)
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    # A deleted namespace's veth pairs go away asynchronously; deleting our ends directly
    # (and waiting) lets an `up` right after this one reuse the names.
    deadline = time.monotonic() + 10
    while (links := our_links()) and time.monotonic() < deadline:
        for link in links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        time.sleep(0.1)
    if root.exists():
        shutil.rmtree(root)


# ---- the topology ------------------------------------------------------------------------------
class Topology:
    """A topology's state folder: its secrets, its processes, and how to start each role."""

    def __init__(
        self, root: Path = DEFAULT_ROOT, python: str | None = None, cache: Path = DEFAULT_CACHE
    ) -> None:
        self.root = root
        self.cache = cache
        self.python = python or sys.executable
        self.state: dict[str, Any] = {}
        if self.state_file.is_file():
            self.state = json.loads(self.state_file.read_text())
            self.python = self.state.get("python", self.python)

    # -- paths and settings
    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    def host_dir(self, name: str) -> Path:
        return self.root / "hosts" / name

    @property
    def artifacts_dir(self) -> str:
        """The artifact store's folder on the store host."""
        return str(self.root / "store" / "srv" / "artifacts")

    @property
    def database_url(self) -> str:
        db = BY_NAME["db"]
        password = self.state["secrets"]["db_password"]
        return f"postgresql+psycopg://{DB_USER}:{password}@{db.address}:{db.port}/{DB_NAME}"

    @property
    def admin(self) -> tuple[str, str]:
        return "admin@localhost", self.state["secrets"]["admin_password"]

    def url(self, name: str = "lb") -> str:
        host = BY_NAME[name]
        return f"http://{host.address}:{host.port}"

    def env_for(self, name: str) -> dict[str, str]:
        """The environment of a product host: its own data folder, the shared services."""
        host = BY_NAME[name]
        etc = self.host_dir(name) / "etc"
        redis, store = BY_NAME["redis"], BY_NAME["store"]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.host_dir(name)),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),  # this checkout's code, whatever is installed
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "ASSISTANT_DATA_DIR": str(self.host_dir(name) / "data"),
            "ASSISTANT_CORPUS_DIR": str(self.root / "corpus"),
            "ASSISTANT_DATABASE__URL": self.database_url,
            "ASSISTANT_BROKER__URL": f"redis://{redis.address}:{redis.port}/0",
            "ASSISTANT_WEB__RATE_LIMIT_STORAGE": f"redis://{redis.address}:{redis.port}/1",
            "ASSISTANT_WEB__SECRET_KEY": self.state["secrets"]["secret_key"],
            "ASSISTANT_WEB__ADMIN_PASSWORD": self.state["secrets"]["admin_password"],
            "ASSISTANT_WEB__TRUSTED_PROXIES": "1",  # HAProxy adds X-Forwarded-For
            "ASSISTANT_SAFETY__HASH_KEY_FILE": str(etc / "pii_hash.key"),
            "ASSISTANT_LLM__QUANTIZED_DIR": str(self.root / "models"),
            # Three product processes share two cores here; a real host sets its own count.
            "ASSISTANT_LLM__N_THREADS": "1",
            "ASSISTANT_ARTIFACTS__URL": f"sftp://{store.address}{self.artifacts_dir}",
            "ASSISTANT_ARTIFACTS__OPTIONS": json.dumps(
                {
                    "username": ARTIFACTS_USER,
                    "key_filename": str(etc / "artifacts_key"),
                    # The store's host key, pinned (assistant/artifacts/ssh.py).
                    "known_hosts": str(etc / "known_hosts"),
                    # The rest goes to paramiko's connect(): only its own arguments.
                    "look_for_keys": False,
                    "allow_agent": False,
                }
            ),
            "ASSISTANT_ARTIFACTS__POLL_S": "2",
        }
        if host.role == "web":
            env["ASSISTANT_WEB__HOST"] = host.address
            env["ASSISTANT_WEB__PORT"] = str(host.port)
            # Answers come from the model host, which serves the registry's active version.
            model = BY_NAME["model"]
            env["ASSISTANT_LLM__BACKEND"] = "remote"
            env["ASSISTANT_LLM__REMOTE_URL"] = f"http://{model.address}:{model.port}/v1"
            env["ASSISTANT_LLM__REMOTE_FOLLOWS_REGISTRY"] = "true"
        if host.role == "model":
            env["ASSISTANT_LLM__PARALLEL"] = "2"
            binary = llama_server_binary()
            if binary is not None:  # HOME is the host's folder: name the cached build
                env["ASSISTANT_LLM__SERVER_BINARY"] = str(binary)
        env.update(self.state.get("extra_env", {}))
        return env

    def command_for(self, name: str) -> list[str] | None:
        """The argv of a host's server (None: nothing runs there)."""
        host, root = BY_NAME[name], self.root
        if host.role == "web":
            return [self.python, "-m", "web.cli", "serve", "--no-worker", "--no-ingest"]
        if host.role == "worker":
            return [self.python, "-m", "web.cli", "worker"]
        if host.role == "postgres":
            pg = postgres_bin()
            assert pg is not None
            return [
                *as_user("postgres"),
                str(pg / "postgres"),
                "-D",
                str(root / "db" / "data"),
                "-c",
                f"listen_addresses={host.address}",
                "-c",
                f"port={host.port}",
                "-c",
                f"unix_socket_directories={root / 'db' / 'run'}",
            ]
        if host.role == "redis":
            return [
                "redis-server",
                "--bind",
                host.address,
                "--port",
                str(host.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root / "redis"),
                "--protected-mode",
                "no",
            ]
        if host.role == "store":
            return ["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "store" / "sshd_config")]
        if host.role == "lb":
            return ["haproxy", "-db", "-f", str(root / "lb" / "haproxy.cfg")]
        if host.role == "model":
            return [
                *[self.python, "-m", "web.cli", "model-server"],
                *["--host", host.address, "--port", str(host.port)],
            ]
        return None

    # -- processes
    def start(self, name: str) -> int | None:
        """Start a host's server in its namespace, in its own process group; its pid."""
        argv = self.command_for(name)
        if argv is None:
            return None
        host = BY_NAME[name]
        if host.role == "postgres" and not self.running(name):
            # After a crash of the host its lock files name a dead postmaster; here that one
            # may linger as a zombie nobody reaps, which PostgreSQL takes for alive.
            db = self.root / "db"
            for lock in (db / "data" / "postmaster.pid", *(db / "run").glob(".s.PGSQL.*.lock")):
                lock.unlink(missing_ok=True)
        env = self.env_for(name) if host.role in PRODUCT_ROLES else {"PATH": os.environ["PATH"]}
        log = (self.root / "logs" / f"{name}.log").open("ab")
        # Readiness is read from what this start writes, not from an earlier run's lines.
        self.state.setdefault("log_offsets", {})[name] = log.tell()
        process = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, *argv],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group per host: kill() takes all of it
        )
        log.close()
        self.state.setdefault("pids", {})[name] = process.pid
        self.save()
        return process.pid

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, wait_s: float = 30.0) -> None:
        """Send ``sig`` to every process of a host, found by its namespace (PostgreSQL's
        backends leave the postmaster's process group), and wait until they have gone:
        with SIGKILL, a crash of that machine."""
        pids = namespace_pids(BY_NAME[name].netns)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.05)
        kill_pids([p for p in pids if alive(p)], grace_s=0)
        for pid in pids:  # those that are this process's children: no zombies left
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    def running(self, name: str) -> bool:
        """Whether any process runs on the host."""
        return bool(namespace_pids(BY_NAME[name].netns))

    def run_in(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        timeout_s: float = 900,
    ) -> str:
        """Run a product command in a host's namespace with its settings (e.g. `ingest`)."""
        result = run(
            [self.python, "-m", "web.cli", *argv],
            netns=BY_NAME[name].netns,
            cwd=REPO,
            env={**self.env_for(name), **(env or {})},
            timeout=timeout_s,
        )
        return result.stdout

    # -- readiness
    def ready(self, name: str) -> bool:
        host = BY_NAME[name]
        if host.role == "web":
            # /api/health answers while the models still load in the background (until they
            # are loaded even a rating waits, about 10 s here); /api/ready once they are.
            return http_status(f"{self.url(name)}/api/ready") == 200
        if host.role == "lb":
            return http_status(f"{self.url('lb')}/api/health") == 200
        if host.role == "worker":
            return self._logged(name, b" ready.")
        if host.role == "model":
            # llama-server answers 503 on /health until the model is loaded.
            return http_status(f"http://{host.address}:{host.port}/health") == 200
        if host.role == "postgres":
            # The port opens before crash recovery ends ("the database system is starting up").
            return self._logged(name, b"database system is ready to accept connections")
        if host.port is not None:
            return port_open(host.address, host.port)
        return True

    def _logged(self, name: str, line: bytes) -> bool:
        """Whether the host's log says ``line`` since its last start."""
        log = self.root / "logs" / f"{name}.log"
        offset = self.state.get("log_offsets", {}).get(name, 0)
        return log.is_file() and line in log.read_bytes()[offset:]

    def wait_ready(self, name: str, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready(name):
            pid = self.state.get("pids", {}).get(name)
            # The started pid counts too: it joins the namespace a moment after it starts.
            if pid is not None and not alive(pid) and not self.running(name):
                raise TopologyError(f"{name} exited; see {self.root / 'logs' / f'{name}.log'}")
            if time.monotonic() > deadline:
                raise TopologyError(f"{name} not ready after {timeout_s:.0f}s")
            time.sleep(0.3)

    def backends(self) -> dict[str, str]:
        """HAProxy's view of the web hosts: {"web1": "UP", ...}."""
        reply = stats_command(self.root / "lb" / "admin.sock", "show stat")
        states = {}
        for line in reply.splitlines():
            cells = line.split(",")
            if len(cells) > 17 and cells[0] == "web" and cells[1] not in ("BACKEND", "FRONTEND"):
                states[cells[1]] = cells[17]
        return states

    def wait_backends_up(
        self, names: tuple[str, ...] = ("web1", "web2"), timeout_s: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(self.backends().get(n, "").startswith("UP") for n in names):
            if time.monotonic() > deadline:
                raise TopologyError(f"backends not all up: {self.backends()}")
            time.sleep(0.3)

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=2))
        self.state_file.chmod(0o600)

    # -- bringing it up
    def up(self, extra_env: Mapping[str, str] | None = None) -> None:
        """Bring the whole topology up from nothing (an old one is taken down first)."""
        missing = missing_prerequisites()
        if missing:
            raise TopologyError("missing: " + ", ".join(missing))
        down(self.root)
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)  # the postgres and artifacts users walk through it
        for sub in ("logs", "models", "redis", "lb"):
            (self.root / sub).mkdir()
        self.state = {
            "python": self.python,
            "repo": str(REPO),
            "secrets": {
                "secret_key": secrets.token_urlsafe(32),
                "db_password": secrets.token_urlsafe(18),
                "admin_password": secrets.token_urlsafe(12),
            },
            "pids": {},
            "extra_env": dict(extra_env or {}),
        }
        self.save()
        make_network()
        self._prepare_hosts()
        self._prepare_postgres()
        self._prepare_store()
        self._prepare_corpus()
        write_haproxy_config(self.root / "lb")
        for name in ("db", "redis", "store"):
            self.start(name)
        for name in ("db", "redis", "store"):
            self.wait_ready(name, 60)
        self._create_database()
        self._seed()
        for name in ("worker", "model", "web1", "web2"):
            self.start(name)
        for name in ("worker", "model", "web1", "web2"):
            self.wait_ready(name)
        self.start("lb")
        self.wait_ready("lb", 60)
        self.wait_backends_up()

    def _prepare_hosts(self) -> None:
        """Each product host: its data folder, and its copies of the shared keys."""
        hash_key = secrets.token_urlsafe(24)  # 32 characters: what safety.pii.load_key takes
        for host in HOSTS:
            if host.role not in PRODUCT_ROLES:
                continue
            etc = self.host_dir(host.name) / "etc"
            (self.host_dir(host.name) / "data").mkdir(parents=True)
            etc.mkdir(parents=True)
            write_secret(etc / "pii_hash.key", hash_key)

    def _prepare_postgres(self) -> None:
        pg = postgres_bin()
        assert pg is not None
        db = self.root / "db"
        (db / "run").mkdir(parents=True)
        password_file = db / "pwfile"
        write_secret(password_file, secrets.token_urlsafe(18))
        run(["chown", "-R", "postgres:postgres", str(db)])
        run(
            [
                *as_user("postgres"),
                str(pg / "initdb"),
                "-D",
                str(db / "data"),
                "-U",
                "postgres",
                "--pwfile",
                str(password_file),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
        password_file.unlink()
        # Only the topology's subnet, only with a password; local socket for the superuser.
        hba = db / "data" / "pg_hba.conf"
        hba.write_text(
            f"local all postgres peer\nhost all all 10.77.0.0/{SUBNET_PREFIX} scram-sha-256\n"
        )

    def _create_database(self) -> None:
        pg = postgres_bin()
        assert pg is not None
        password = self.state["secrets"]["db_password"].replace("'", "''")
        psql = [*as_user("postgres"), str(pg / "psql"), "-h", str(self.root / "db" / "run")]
        psql += ["-U", "postgres", "-v", "ON_ERROR_STOP=1", "-c"]
        run([*psql, f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{password}'"])
        run([*psql, f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}"])

    def _prepare_store(self) -> None:
        """sshd serving SFTP only, for one user with a generated key; host key pinned."""
        store = self.root / "store"
        etc = store / "etc"
        etc.mkdir(parents=True)
        ensure_artifacts_user()
        served = Path(self.artifacts_dir)
        served.mkdir(parents=True)
        run(["chown", f"{ARTIFACTS_USER}:{ARTIFACTS_USER}", str(served)])
        new_key(etc / "host_key")
        client_key = self.root / "secrets" / "artifacts_key"
        client_key.parent.mkdir(mode=0o700)
        new_key(client_key)
        public = (client_key.with_suffix(".pub")).read_text().strip()
        (etc / "authorized_keys").write_text(f"restrict {public}\n")
        host_public = " ".join((etc / "host_key.pub").read_text().split()[:2])
        store_address = BY_NAME["store"].address
        for host in HOSTS:
            if host.role in PRODUCT_ROLES:
                host_etc = self.host_dir(host.name) / "etc"
                shutil.copy(client_key, host_etc / "artifacts_key")
                (host_etc / "artifacts_key").chmod(0o600)
                (host_etc / "known_hosts").write_text(f"{store_address} {host_public}\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
        (store / "sshd_config").write_text(
            f"ListenAddress {store_address}\n"
            "Port 22\n"
            f"HostKey {etc / 'host_key'}\n"
            f"PidFile {store / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {etc / 'authorized_keys'}\n"
            # The state folder sits under /tmp (world-writable): the per-path checks of
            # StrictModes would refuse it. The key files themselves are root's, mode 0600/0644.
            "StrictModes no\n"
            f"AllowUsers {ARTIFACTS_USER}\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin no\n"
            "UsePAM no\n"
            "AllowTcpForwarding no\n"
            "X11Forwarding no\n"
            "Subsystem sftp internal-sftp\n"
            "ForceCommand internal-sftp\n"
        )
        run(["/usr/sbin/sshd", "-t", "-f", str(store / "sshd_config")])

    def _prepare_corpus(self) -> None:
        """A tiny corpus (a few MedQuAD pages, the start of one contract) for a fast ingest."""
        write_tiny_corpus(self.root / "corpus")

    def _seed(self) -> None:
        """On the worker host: the schema and first admin, the release's model files, the
        first index (published to the store, where the web hosts find it when they start)."""
        worker_models = self.host_dir("worker") / "data" / "models"
        sync_files(self.cache / "release-models", self.root / "models")
        sync_files(self.cache / "embedder", worker_models)
        self.run_in("worker", ["init-db"])
        # The shipped grounded model merged once into models/, the one path every host
        # registers and loads (as an install step would, before any host starts).
        run(
            [self.python, "-c", SEED_MODELS],
            netns=BY_NAME["worker"].netns,
            cwd=REPO,
            env=self.env_for("worker"),
            timeout=600,
        )
        corpus = self.root / "corpus"
        self.run_in("worker", ["ingest", str(corpus / "medical"), str(corpus / "legal")])
        sync_files(self.root / "models", self.cache / "release-models")
        sync_files(worker_models, self.cache / "embedder")
        seed = self.host_dir("worker") / "data"
        for name in ("web1", "web2"):
            data = self.host_dir(name) / "data"
            # The embedder's ONNX export (derived from the installed model, not data).
            shutil.copytree(seed / "models", data / "models")

    def status(self) -> list[dict[str, Any]]:
        present = set(our_namespaces())
        rows = []
        for host in HOSTS:
            rows.append(
                {
                    "host": host.name,
                    "address": host.address,
                    "netns": host.netns if host.netns in present else None,
                    "running": self.running(host.name),
                    "ready": host.netns in present and self.ready(host.name),
                }
            )
        return rows


SEED_MODELS = (
    "from assistant.services import Services\n"
    "from assistant.settings import Settings\n"
    "Services(Settings()).ensure_shipped_model()\n"
)


def llama_server_binary() -> Path | None:
    """The newest llama-server that scripts/build-llama-server.sh cached for this user."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    builds = sorted(
        (cache / "domain-assistant" / "llama-server").glob("*/llama-server"),
        key=lambda p: p.stat().st_mtime,
    )
    return builds[-1] if builds else None


def as_user(user: str) -> list[str]:
    """Prefix that runs a command as ``user`` (setpriv execs: the pid stays the server's)."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def ensure_artifacts_user() -> None:
    """The store's system account (kept across runs: one line in /etc/passwd)."""
    if subprocess.run(["id", ARTIFACTS_USER], capture_output=True).returncode != 0:
        run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                ARTIFACTS_USER,
            ]
        )
    # '!' (useradd's locked password) makes sshd without PAM refuse even a key; '*' only
    # says no password can ever match.
    run(["usermod", "-p", "*", ARTIFACTS_USER])


def new_key(path: Path) -> None:
    """An ed25519 key pair without a passphrase (``path`` and ``path.pub``)."""
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)])


def sync_files(source: Path, target: Path) -> None:
    """Copy the files of ``source`` that ``target`` lacks, each under a temporary name first
    (an interrupted copy never leaves a truncated model file behind)."""
    if not source.is_dir():
        return
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_file() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            partial = destination.with_name(f".partial-{destination.name}")
            shutil.copy2(path, partial)
            partial.replace(destination)


def write_secret(path: Path, value: str) -> None:
    path.touch(mode=0o600)
    path.write_text(value)


def write_tiny_corpus(
    target: Path, medical_docs: int = 10, max_chars: int = 2500, legal_chars: int = 3000
) -> None:
    """The first short pages of the repository's MedQuAD file and the start of its first
    contract: enough to answer and cite, small enough to embed in seconds on two cores."""
    source = REPO / "data" / "corpus"
    (target / "medical").mkdir(parents=True)
    (target / "legal").mkdir(parents=True)
    picked: list[str] = []
    with (source / "medical" / "medquad_docs.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if len(json.loads(line)["text"]) <= max_chars:
                picked.append(line)
                if len(picked) == medical_docs:
                    break
    (target / "medical" / "medquad_tiny.jsonl").write_text("".join(picked), encoding="utf-8")
    with (source / "legal" / "cuad_docs.jsonl").open(encoding="utf-8") as handle:
        record = json.loads(handle.readline())
    record["text"] = record["text"][:legal_chars]
    (target / "legal" / "cuad_tiny.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")


def write_haproxy_config(folder: Path) -> None:
    """Round robin over the web hosts; a host is out after 2 failed checks 1 s apart."""
    lb = BY_NAME["lb"]
    servers = "".join(
        f"    server {h.name} {h.address}:{h.port} check\n" for h in HOSTS if h.role == "web"
    )
    (folder / "haproxy.cfg").write_text(
        "global\n"
        "    log stdout format raw local0 info\n"
        f"    stats socket {folder / 'admin.sock'} mode 600 level admin\n"
        "defaults\n"
        "    mode http\n"
        "    log global\n"
        "    option httplog\n"
        "    timeout connect 2s\n"
        "    timeout client 300s\n"
        "    timeout server 300s\n"
        # A connection refused by a dead host is retried on the other one: the request
        # never reached a server, so even a POST is safe to send again.
        "    retries 3\n"
        "    option redispatch 1\n"
        # A new server connection for every request: a request sent on a kept-alive
        # connection to a host that just died would be dropped without an answer (HAProxy
        # closes the client's connection for it to retry, which an API client does not).
        "    option http-server-close\n"
        "frontend www\n"
        f"    bind {lb.address}:{lb.port}\n"
        "    option forwardfor\n"
        "    default_backend web\n"
        "backend web\n"
        "    balance roundrobin\n"
        # Ready, not merely alive: a restarted host joins once its models are loaded.
        "    option httpchk GET /api/ready\n"
        "    http-check expect status 200\n"
        # Out after 2 failed checks 1 s apart, or at once on a refused connection.
        "    default-server inter 1s fall 2 rise 2\n"
        "    default-server observe layer4 error-limit 1 on-error mark-down\n"
        # Which host answered: the tests (and an operator with curl -i) can tell.
        "    http-response set-header X-Served-By %s\n" + servers
    )
    run(["haproxy", "-c", "-q", "-f", str(folder / "haproxy.cfg")])


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def port_open(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


def stats_command(sock_path: Path, command: str) -> str:
    """One command on HAProxy's admin socket (its answer ends when it closes)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(str(sock_path))
        sock.sendall(command.encode() + b"\n")
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="topology", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the state folder")
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="bring the topology up (an old one goes first)")
    up_parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra product setting"
    )
    sub.add_parser("down", help="stop everything and remove namespaces and the state folder")
    sub.add_parser("status", help="each host: namespace, process, readiness")
    args = parser.parse_args(argv)
    if args.command == "down":
        down(args.root)
        return 0
    topology = Topology(args.root)
    if args.command == "up":
        extra = dict(item.split("=", 1) for item in args.set)
        try:
            topology.up(extra)
        except BaseException:
            print(f"up failed; logs in {args.root / 'logs'}; `down` cleans up", file=sys.stderr)
            raise
        user, password = topology.admin
        print(f"load balancer: {topology.url('lb')}/  admin: {user} / {password}")
        return 0
    for row in topology.status():
        flags = " ".join(
            f"{k}={'yes' if row[k] else 'no':<3}" for k in ("netns", "running", "ready")
        )
        print(f"{row['host']:<7} {row['address']:<11} {flags}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
