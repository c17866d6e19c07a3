"""The remote backend against servers that misbehave (httpx's MockTransport stands in for
the model server, an external edge): its deadline and its bad chunks. The real server is in
test_remote_llm.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from assistant.errors import GenerationTimeout, ModelUnavailable
from assistant.llm import RemoteLLM
from assistant.settings import LLMSettings

MESSAGES = [{"role": "user", "content": "What is asthma?"}]


def backend(lines: Iterator[bytes]) -> RemoteLLM:
    def respond(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=lines, headers={"content-type": "text/event-stream"})

    client = httpx.Client(transport=httpx.MockTransport(respond))
    return RemoteLLM(LLMSettings(backend="remote", remote_url="http://model.test/v1"), client)


def test_a_server_that_sends_only_keep_alive_lines_hits_the_deadline() -> None:
    def keep_alive() -> Iterator[bytes]:
        for _ in range(400):  # 20 s of comments, never a chunk
            time.sleep(0.05)
            yield b": keep-alive\n\n"

    started = time.perf_counter()
    with pytest.raises(GenerationTimeout):
        list(backend(keep_alive()).stream_chat(MESSAGES, timeout_s=0.5))
    assert time.perf_counter() - started < 3


@pytest.mark.parametrize("chunk", [b"data: {not json", b"data: [1, 2]", b'data: {"choices": 7}'])
def test_a_malformed_chunk_is_model_unavailable_not_a_crash(chunk: bytes) -> None:
    lines = iter([b'data: {"choices": [{"delta": {"content": "Asthma"}}]}\n\n', chunk + b"\n\n"])
    with pytest.raises(ModelUnavailable, match="malformed"):
        list(backend(lines).stream_chat(MESSAGES))
