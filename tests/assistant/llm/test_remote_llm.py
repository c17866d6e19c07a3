"""The remote backend against a real OpenAI-compatible server: llama.cpp's own, on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.errors import ModelUnavailable, ServerBusy
from assistant.llm import RemoteLLM, Scheduler
from assistant.settings import LLMSettings, default_chat_model

pytestmark = pytest.mark.slow

MESSAGES = [
    {"role": "system", "content": "You answer medical questions."},
    {"role": "user", "content": "What is asthma?"},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """``python -m llama_cpp.server`` with SmolLM2 on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_chat_model()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "2",
            "--n_ctx",
            "1024",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start in 120 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(20)


def test_remote_backend_streams_a_reply(server_url: str) -> None:
    llm = RemoteLLM(LLMSettings(backend="remote", remote_url=server_url, max_tokens=24))
    pieces = list(llm.stream_chat(MESSAGES))
    assert len(pieces) > 3 and "".join(pieces).strip()
    assert llm.count_tokens("a" * 30) >= 10  # never under-counts a prompt
    # Closing mid-stream drops the connection; the next request is served normally.
    stream = llm.stream_chat(MESSAGES, max_tokens=200)
    next(stream)
    stream.close()
    assert "".join(llm.stream_chat(MESSAGES, max_tokens=4)).strip()
    llm.close()


def test_with_a_scheduler_a_web_host_sends_its_capacity_and_refuses_beyond(
    server_url: str,
) -> None:
    settings = LLMSettings(backend="remote", remote_url=server_url, max_tokens=200)
    llm = RemoteLLM(settings, scheduler=Scheduler(max_waiting=0, wait_timeout_s=5, capacity=1))
    first = llm.stream_chat(MESSAGES)
    assert next(first)  # holds the one slot while it streams
    with pytest.raises(ServerBusy):
        next(llm.stream_chat(MESSAGES, max_tokens=4))  # no room to wait: refused at once
    first.close()  # a client that goes away frees its slot
    assert "".join(llm.stream_chat(MESSAGES, max_tokens=4)).strip()
    llm.close()


def test_the_remote_backend_of_a_web_host_queues_llm_parallel_at_once(tmp_path: Path) -> None:
    from assistant.services import Services
    from assistant.settings import Settings

    settings = Settings(
        data_dir=tmp_path,
        llm=LLMSettings(backend="remote", remote_url="http://127.0.0.1:9/v1", parallel=6),
        web={"threads": 16},  # type: ignore[arg-type]
    )
    services = Services(settings)
    services.db.upgrade()
    with services.llm.use() as lease:
        backend = lease.backend
    assert isinstance(backend, RemoteLLM) and backend.scheduler is not None
    assert backend.scheduler.capacity == 6
    assert services.queue_limit() == 16 - 6 - 2  # threads - generating - reserved
    services.close()


def test_an_unreachable_server_is_model_unavailable() -> None:
    llm = RemoteLLM(LLMSettings(backend="remote", remote_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(ModelUnavailable):
        list(llm.stream_chat(MESSAGES))
    with pytest.raises(ModelUnavailable):
        RemoteLLM(LLMSettings(backend="remote"))
