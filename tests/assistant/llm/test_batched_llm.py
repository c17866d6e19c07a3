"""The batched backend: the real llama-server (scripts/build-llama-server.sh) with SmolLM2,
decoding several answers at once behind the product's queue."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.errors import ServerBusy
from assistant.llm import BatchedLLM, ServingLLM, registry, requantized
from assistant.llm.batched import LlamaServer, find_server_binary
from assistant.llm.scheduler import Scheduler
from assistant.services import Services
from assistant.settings import LLMSettings, default_chat_model
from assistant.storage.models import ModelKind
from tests.conftest import make_settings
from tests.paths import ROOT

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You answer medical questions."},
    {"role": "user", "content": "Describe asthma in a long paragraph."},
]
SETTINGS = LLMSettings(backend="batched", requantize="off", parallel=2, n_ctx=512)


@pytest.fixture(scope="module", autouse=True)
def server_binary() -> Path:
    try:
        return find_server_binary(SETTINGS)
    except Exception as exc:
        pytest.fail(f"{exc} (scripts/install.sh --dev and scripts/test.sh build it)")


@pytest.fixture(scope="module")
def batched() -> Iterator[BatchedLLM]:
    llm = BatchedLLM(SETTINGS, scheduler=Scheduler(0, 30, capacity=SETTINGS.parallel))
    yield llm
    llm.close()


def gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether process ``pid`` has exited (and been reaped, or is a zombie) in time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_the_server_build_has_no_amx_kernels(server_binary: Path) -> None:
    """As in the in-process build: llama.cpp's AMX kernels crash on Sapphire Rapids VMs.
    Built with AMX, the binary holds the AMX buffer type (the server does not print its CPU
    features at the default verbosity)."""
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) is needed to read the binary's symbols")
    symbols = subprocess.run(
        ["nm", str(server_binary)], capture_output=True, text=True, check=True
    ).stdout
    assert "ggml_cpu_has_amx_int8" in symbols  # the symbols are there to read
    assert "ggml_backend_amx_buffer_type" not in symbols, "built with AMX kernels"


def test_several_answers_are_decoded_at_once(batched: BatchedLLM) -> None:
    first = batched.stream_chat(MESSAGES, max_tokens=60)
    second = batched.stream_chat(MESSAGES, max_tokens=60)
    try:
        # The second answer starts while the first is still generating: with one slot it
        # would wait in the queue until the first had finished.
        a, b = next(first), next(second)
        assert batched.scheduler.active == 2
        rest_a, rest_b = next(first), next(second)  # and both go on
        assert a and b and rest_a and rest_b
    finally:
        first.close()
        second.close()
    assert batched.scheduler.active == 0


def test_the_same_prompt_gives_the_same_greedy_answer_in_parallel(batched: BatchedLLM) -> None:
    replies: list[str] = ["", ""]

    def ask(i: int) -> None:
        replies[i] = "".join(batched.stream_chat(MESSAGES, max_tokens=12))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert replies[0] and replies[0] == replies[1]


def test_a_full_queue_refuses_at_once(batched: BatchedLLM) -> None:
    streams = [batched.stream_chat(MESSAGES, max_tokens=200) for _ in range(2)]
    try:
        for stream in streams:
            next(stream)
        started = time.perf_counter()
        with pytest.raises(ServerBusy):  # both slots busy, and no room to wait (queue 0)
            next(batched.stream_chat(MESSAGES, max_tokens=5))
        assert time.perf_counter() - started < 0.5
    finally:
        for stream in streams:
            stream.close()


def test_closing_a_stream_frees_its_slot_for_the_next_in_line() -> None:
    llm = BatchedLLM(SETTINGS, scheduler=Scheduler(4, 30, capacity=2))
    try:
        streams = [llm.stream_chat(MESSAGES, max_tokens=400) for _ in range(2)]
        for stream in streams:
            next(stream)
        waiter_first: list[float] = []

        def wait_for_a_slot() -> None:
            started = time.perf_counter()
            next(llm.stream_chat(MESSAGES, max_tokens=5))
            waiter_first.append(time.perf_counter() - started)

        thread = threading.Thread(target=wait_for_a_slot)
        thread.start()
        while llm.scheduler.waiting < 1:
            time.sleep(0.01)
        time.sleep(0.3)
        assert not waiter_first  # no slot yet
        streams[0].close()  # a client goes away
        thread.join(30)
        assert waiter_first, "the freed slot was not given to the waiting request"
        # The server stopped the closed answer: it has a free slot again (of two).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            slots = httpx.get(f"{llm.server.url}/slots", timeout=5)
            if slots.status_code != 200:
                break  # this build does not expose /slots
            if sum(1 for s in slots.json() if s.get("is_processing")) <= 1:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server kept generating the closed answer")
        streams[1].close()
    finally:
        llm.close()


def test_count_tokens_is_the_models_own_count(batched: BatchedLLM) -> None:
    from llama_cpp import Llama

    text = "Asthma is a chronic disease of the airways."
    vocab = Llama(str(default_chat_model()), vocab_only=True, verbose=False)
    try:
        expected = len(vocab.tokenize(text.encode(), add_bos=False, special=False))
    finally:
        vocab.close()
    assert batched.count_tokens(text) == expected
    assert batched.context_size == SETTINGS.n_ctx


def test_close_stops_the_server_process() -> None:
    llm = BatchedLLM(SETTINGS)
    pid = llm.server.pid
    assert pid is not None and llm.server.alive()
    llm.close()
    assert gone(pid, 1.0)
    llm.close()  # twice is harmless


def test_the_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL runs no atexit and no close: the kernel's parent-death signal stops it."""
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from assistant.llm.batched import LlamaServer
        from assistant.settings import LLMSettings, default_chat_model
        server = LlamaServer(LLMSettings(parallel=1, n_ctx=256), default_chat_model())
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the parent did not start a server: {line!r}"
        pid = int(line)
        assert not gone(pid, 0.2)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert gone(pid), f"llama-server {pid} outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_an_interpreter_that_exits_stops_its_servers() -> None:
    script = textwrap.dedent(
        """
        from assistant.llm.batched import LlamaServer
        from assistant.settings import LLMSettings, default_chat_model
        server = LlamaServer(LLMSettings(parallel=1, n_ctx=256), default_chat_model())
        print(server.pid, flush=True)
        """  # no close: atexit stops it
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    pid = int(done.stdout.strip())
    assert gone(pid, 2.0)


def test_a_version_switch_starts_a_server_for_the_new_file(tmp_path: Path) -> None:
    new_file = requantized(default_chat_model(), "Q8_0", tmp_path / "quantized")
    settings = make_settings(
        tmp_path,
        llm={
            "backend": "batched",
            "parallel": 2,
            "n_ctx": 512,
            "requantize": "off",
            "version_check_s": 0,
            "shipped_adapter": None,
        },
    )
    services = Services(settings)
    services.db.upgrade()
    try:
        serving = services.llm
        assert isinstance(serving, ServingLLM)
        with serving.use() as lease:
            old = lease.backend
            assert isinstance(old, BatchedLLM)
        in_flight = serving.stream_chat(MESSAGES, max_tokens=300)
        next(in_flight)
        old_pid = old.server.pid
        assert old_pid is not None

        new = registry.register_version(
            services.db, "q8", kind=ModelKind.MERGED, base_path=new_file
        )
        registry.activate_version(services.db, new.id)
        with serving.use() as lease:
            assert lease.version_id == new.id
            backend = lease.backend
            assert isinstance(backend, BatchedLLM) and backend.server.pid != old_pid
            new_pid = backend.server.pid
            assert new_pid is not None
            props = httpx.get(f"{backend.server.url}/props", timeout=5).json()
            assert Path(props["model_path"]).name == new_file.name
        assert "".join(serving.stream_chat(MESSAGES, max_tokens=5))  # answered by the new
        assert not gone(old_pid, 0.2)  # the old one still serves its answer...
        in_flight.close()
        assert gone(old_pid)  # ...and is stopped after it
        assert serving.loaded_versions == [new.id]
    finally:
        services.close()
    assert gone(new_pid)


def test_the_servers_command_gives_each_slot_the_whole_context() -> None:
    server = object.__new__(LlamaServer)
    server.settings, server.binary = SETTINGS, Path("llama-server")
    server.model_path = Path("m.gguf")
    server.host, server.fixed_port, server.alias = "127.0.0.1", None, None
    command = server.command(1234, None)
    assert command[command.index("--ctx-size") + 1] == str(SETTINGS.n_ctx * SETTINGS.parallel)
    assert command[command.index("--parallel") + 1] == "2"
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert os.path.basename(command[0]) == "llama-server"
    assert "--alias" not in command  # a process's own server lists the file's name
    server.host, server.alias = "10.0.0.5", "ft-job3"  # the model-server role
    command = server.command(8080, None)
    assert command[command.index("--host") + 1] == "10.0.0.5"
    assert command[command.index("--alias") + 1] == "ft-job3"
