"""The model-server role: the real llama-server on a fixed address follows the registry's
active version (promotion, rollback, a bad file), and the remote backend of a web host only
takes answers from the version it names."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.errors import ServerBusy
from assistant.llm import RemoteLLM, registry
from assistant.llm.batched import LlamaServer, find_server_binary, free_port
from assistant.llm.model_server import ModelServerAgent
from assistant.llm.registry import ModelVersionInfo
from assistant.settings import LLMSettings
from assistant.storage.db import Database
from assistant.storage.models import ModelKind
from tests.paths import CHAT_MODEL

pytestmark = pytest.mark.slow

SETTINGS = LLMSettings(backend="batched", requantize="off", parallel=2, n_ctx=512, max_tokens=8)
MESSAGES = [{"role": "user", "content": "What is asthma?"}]


@pytest.fixture()
def registry_db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    db.upgrade()
    return db


@pytest.fixture()
def agent(registry_db: Database) -> Iterator[tuple[ModelServerAgent, str]]:
    find_server_binary(SETTINGS)  # fails with the build command when it is missing
    port = free_port()
    servers: list[LlamaServer] = []

    def start(version: ModelVersionInfo, path: Path) -> LlamaServer:
        server = LlamaServer(SETTINGS, path, port=port, alias=version.name)
        servers.append(server)
        return server

    agent = ModelServerAgent(registry_db, lambda version: version.serving_path, start)
    yield agent, f"http://127.0.0.1:{port}/v1"
    agent._stop_server()
    assert not any(server.alive() for server in servers), "a server outlived its agent"


def web_host(url: str, version: ModelVersionInfo) -> RemoteLLM:
    settings = SETTINGS.model_copy(update={"backend": "remote", "remote_url": url})
    return RemoteLLM(settings, expected_model=version.name)


def answer(llm: RemoteLLM) -> str:
    try:
        return "".join(llm.stream_chat(MESSAGES, max_tokens=8, temperature=0.0))
    finally:
        llm.close()


def merged_copy(db: Database, folder: Path, name: str, content: bytes | None = None) -> int:
    path = folder / f"{name}.gguf"
    if content is None:
        shutil.copyfile(CHAT_MODEL, path)
    else:
        path.write_bytes(content)
    return registry.register_version(db, name, kind=ModelKind.MERGED, base_path=path).id


def test_promotion_and_rollback_reach_the_model_server(
    agent: tuple[ModelServerAgent, str], registry_db: Database, tmp_path: Path
) -> None:
    server, url = agent
    base = registry.ensure_base_version(registry_db, CHAT_MODEL)
    assert server.sync_once() and server.serving is not None and server.serving.name == "base"
    assert answer(web_host(url, base)).strip()
    assert not server.sync_once(), "nothing changed: no restart"

    trained = registry.activate_version(registry_db, merged_copy(registry_db, tmp_path, "ft-job1"))
    # Until the agent has switched, a web host that follows the registry is told to retry
    # rather than given an answer the old version wrote under the new name.
    with pytest.raises(ServerBusy, match="switching to model version ft-job1"):
        answer(web_host(url, trained))
    assert server.sync_once()
    assert answer(web_host(url, trained)).strip()
    with pytest.raises(ServerBusy):
        answer(web_host(url, base))

    registry.rollback(registry_db)
    assert server.sync_once() and server.serving is not None and server.serving.name == "base"
    assert answer(web_host(url, base)).strip()


def test_a_version_that_cannot_start_leaves_the_previous_one_serving(
    agent: tuple[ModelServerAgent, str], registry_db: Database, tmp_path: Path
) -> None:
    server, url = agent
    base = registry.ensure_base_version(registry_db, CHAT_MODEL)
    server.sync_once()
    broken = merged_copy(registry_db, tmp_path, "ft-broken", b"GGUF" + b"\0" * 4096)
    registry.activate_version(registry_db, broken)

    with pytest.raises(Exception, match="did not start"):
        server.sync_once()
    assert server.serving is not None and server.serving.name == "base"
    assert answer(web_host(url, base)).strip()


def test_an_answer_in_flight_finishes_on_the_old_version_before_the_switch(
    agent: tuple[ModelServerAgent, str], registry_db: Database, tmp_path: Path
) -> None:
    server, url = agent
    base = registry.ensure_base_version(registry_db, CHAT_MODEL)
    server.sync_once()
    long_answer = [{"role": "user", "content": "Describe asthma: its causes, symptoms and care."}]

    def stream(llm: RemoteLLM) -> Iterator[str]:
        return llm.stream_chat(long_answer, max_tokens=160, temperature=0.0)

    reference = list(stream(web_host(url, base)))
    assert len(reference) >= 60, "the answer must last long enough to be in flight"
    llm = web_host(url, base)
    pieces = stream(llm)
    received = [next(pieces)]  # decoding has begun on the old version
    trained = registry.activate_version(registry_db, merged_copy(registry_db, tmp_path, "ft-job2"))
    switch = threading.Thread(target=server.sync_once)
    switch.start()
    try:
        received += list(pieces)  # not cut off: the switch waits for this answer
    finally:
        llm.close()
        switch.join(60)
    assert "".join(received) == "".join(reference)
    assert server.serving is not None and server.serving.name == "ft-job2"
    assert answer(web_host(url, trained)).strip()
