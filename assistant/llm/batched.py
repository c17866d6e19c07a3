"""The batched LLM backend: llama.cpp's own server, started and owned by this process.

One ``Llama`` in this process decodes one stream at a time. llama.cpp's server
(``llama-server``) keeps ``parallel`` slots and decodes every busy slot's next token in one
batch (continuous batching), so answers that arrive together are decoded together. This
module starts it on a loopback port with the GGUF of one model version, talks to it through
``RemoteLLM`` and stops it when the version is freed (ServingLLM calls ``close``).
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING

from assistant.errors import ModelUnavailable
from assistant.llm.base import ChatMessage
from assistant.llm.local import checked_model_files
from assistant.llm.remote import RemoteLLM
from assistant.llm.scheduler import Scheduler
from assistant.settings import LLMSettings

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 120.0  # loading a GGUF of a few GB from a cold disk
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def server_cache_dir() -> Path:
    """Where scripts/build-llama-server.sh keeps its builds (one folder per build key)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "domain-assistant" / "llama-server"


def find_server_binary(settings: LLMSettings) -> Path:
    """The llama-server to run: the setting, else the newest cached build, else PATH."""
    if settings.server_binary is not None:
        if not os.access(settings.server_binary, os.X_OK):
            raise ModelUnavailable(f"llm.server_binary {settings.server_binary} is not executable")
        return settings.server_binary
    builds = [p for p in server_cache_dir().glob("*/llama-server") if os.access(p, os.X_OK)]
    if builds:
        return max(builds, key=lambda p: p.stat().st_mtime)
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    raise ModelUnavailable(
        "the batched backend needs llama-server: run scripts/build-llama-server.sh "
        "(or set ASSISTANT_LLM__SERVER_BINARY)"
    )


def free_port() -> int:
    """A loopback port free now (the server binds it a moment later; a start that loses
    the race fails its health check and is retried on another port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> Callable[[], None] | None:
    """A function for the child to run before exec: SIGTERM when the thread that started it
    dies (Linux; None elsewhere, where atexit and ``close`` still stop it).

    This covers a parent killed with SIGKILL, where neither atexit nor ``close`` runs.
    ``prctl`` is looked up here, in the parent: loading a library between fork and exec
    of a threaded process can deadlock on a lock another thread held at the fork.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_parent_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_parent_death_signal


class LlamaServer:
    """One llama-server process serving one GGUF on 127.0.0.1, in its own process group.

    It is started from a thread this object owns and keeps until ``stop``: the kernel's
    parent-death signal follows the thread that forked, not the process, and a request
    thread (which is what loads a model version) may end long before the server should.
    """

    def __init__(
        self,
        settings: LLMSettings,
        model_path: Path,
        lora_path: Path | None = None,
        binary: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        alias: str | None = None,
    ) -> None:
        """``host``, ``port`` and ``alias``: where it listens and the model name it lists
        (the model-server role serves other hosts at a fixed address; by default a free
        loopback port for this process alone)."""
        self.settings = settings
        self.model_path = model_path
        self.host, self.fixed_port, self.alias = host, port, alias
        self.binary = binary or find_server_binary(settings)
        self._owner = ThreadPoolExecutor(1, thread_name_prefix=f"llama-server-{model_path.stem}")
        # Kept open for the life of the server (its log), closed by stop.
        self._log: IO[bytes] = tempfile.TemporaryFile(prefix="llama-server-")  # noqa: SIM115
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._stop_lock = threading.Lock()
        try:
            self._start(lora_path)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def command(self, port: int, lora_path: Path | None) -> list[str]:
        s = self.settings
        command = [
            str(self.binary),
            "--model",
            str(self.model_path),
            "--host",
            self.host,
            "--port",
            str(port),
            "--parallel",
            str(s.parallel),
            # The server splits its context evenly across slots: each answer gets n_ctx.
            "--ctx-size",
            str(s.n_ctx * s.parallel),
            # One KV buffer per slot, so a slot can never take another's room mid-answer.
            "--no-kv-unified",
            "--cont-batching",
            "--threads",
            str(s.n_threads),
            "--threads-batch",
            str(s.n_threads),
            "--n-gpu-layers",
            str(s.n_gpu_layers),
            "--no-webui",
        ]
        if lora_path is not None:
            command += ["--lora", str(lora_path)]
        if self.alias:
            command += ["--alias", self.alias]
        return command

    def _start(self, lora_path: Path | None) -> None:
        started = time.perf_counter()
        for attempt in range(1 if self.fixed_port else 3):
            port = self.fixed_port or free_port()
            self._process = self._owner.submit(self._spawn, port, lora_path).result()
            self.port = port
            if self._wait_healthy():
                logger.info(
                    "llama-server for %s ready on port %d in %.2fs (pid %d)",
                    self.model_path.name,
                    port,
                    time.perf_counter() - started,
                    self._process.pid,
                )
                return
            self._terminate()
            if b"bind" not in self.log_tail().lower():  # only a lost port race is retried
                break
            logger.warning("llama-server could not bind port %d (attempt %d)", port, attempt + 1)
        raise ModelUnavailable(
            f"llama-server did not start for {self.model_path.name}: "
            f"{self.log_tail().decode('utf-8', 'replace')[-400:]}"
        )

    def _spawn(self, port: int, lora_path: Path | None) -> subprocess.Popen[bytes]:
        self._log.seek(0)
        self._log.truncate()
        return subprocess.Popen(
            self.command(port, lora_path),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, never by ^C twice
            preexec_fn=die_with_parent(),
        )

    def _wait_healthy(self) -> bool:
        """Whether /health answered 200 before the process exited or the time ran out."""
        import httpx

        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                # 503 while the model loads, 200 once slots take requests.
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def busy_slots(self) -> int | None:
        """Answers the server is decoding now (its /slots); None when it cannot tell."""
        import httpx

        try:
            response = httpx.get(f"{self.url}/slots", timeout=2)
            response.raise_for_status()
            return sum(bool(slot.get("is_processing")) for slot in response.json())
        except (httpx.HTTPError, ValueError, TypeError, AttributeError):
            return None

    def log_tail(self, size: int = 4000) -> bytes:
        """The end of the server's own log (for error messages)."""
        try:
            self._log.seek(0, os.SEEK_END)
            end = self._log.tell()
            self._log.seek(max(0, end - size))
            return self._log.read()
        except (OSError, ValueError):
            return b""

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning("llama-server pid %d ignored SIGTERM; killing it", process.pid)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)
        except ProcessLookupError:
            process.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop the server (its whole process group); safe to call more than once."""
        with self._stop_lock:
            self._terminate()
            self._owner.shutdown(wait=False)
            self._log.close()
        atexit.unregister(self.stop)


class BatchedLLM:
    """One model version served by its own llama-server, ``parallel`` answers at a time.

    The scheduler (shared by every version the process serves, see Services.llm) admits
    ``parallel`` requests at once and queues the rest first come, first served; the server
    never queues. Closing the reply's iterator closes the HTTP stream, and the server stops
    that slot's generation when it sees the connection go.
    """

    def __init__(
        self,
        settings: LLMSettings,
        model_path: Path | None = None,
        lora_path: Path | None = None,
        scheduler: Scheduler | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.settings = settings
        self.model_path = checked_model_files(settings, model_path, lora_path)
        import httpx

        self.server = LlamaServer(settings, self.model_path, lora_path)
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(settings.request_timeout_s, connect=5.0)
        )
        remote = settings.model_copy(update={"remote_url": f"{self.server.url}/v1"})
        self._remote = RemoteLLM(remote, self._client)
        if scheduler is None:
            scheduler = Scheduler(
                settings.queue_size,
                settings.queue_timeout_s,
                settings.retry_after_s,
                capacity=settings.parallel,
            )
        self.scheduler = scheduler
        self._closed = False

    @property
    def name(self) -> str:
        return self.model_path.name

    @property
    def context_size(self) -> int:
        return self.settings.n_ctx  # per slot: the server was given n_ctx * parallel

    def count_tokens(self, text: str) -> int:
        """The model's own count, from the server's tokenizer (no slot is used)."""
        import httpx

        try:
            response = self._client.post(
                f"{self.server.url}/tokenize",
                json={"content": text, "add_special": False, "parse_special": False},
            )
            response.raise_for_status()
            return len(response.json()["tokens"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise ModelUnavailable(f"the model server could not count tokens: {exc}") from exc

    def stream_chat(
        self,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """The reply piece by piece, once a slot is free (ServerBusy when the queue is full)."""
        with self.scheduler.slot():
            if self._closed:
                raise ModelUnavailable(f"{self.name} was unloaded")
            yield from self._remote.stream_chat(
                messages, max_tokens, timeout_s=timeout_s, temperature=temperature, stop=stop
            )

    def close(self) -> None:
        """Stop the server; the caller makes sure no request uses it (see ServingLLM)."""
        if not self._closed:
            self._closed = True
            self._remote.close()
            self.server.stop()
