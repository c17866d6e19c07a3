"""LLM backends (local llama.cpp, a batching llama.cpp server, remote OpenAI-compatible) and
the registry-following server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from assistant.llm.base import ChatMessage, LLMBackend
from assistant.llm.batched import BatchedLLM
from assistant.llm.local import LocalLLM, requantized, serving_file
from assistant.llm.registry import ModelVersionInfo
from assistant.llm.remote import RemoteLLM
from assistant.llm.router import Lease, ServingLLM
from assistant.llm.scheduler import Scheduler
from assistant.settings import Settings
from assistant.storage.models import ModelKind

__all__ = [
    "BatchedLLM",
    "ChatMessage",
    "LLMBackend",
    "Lease",
    "LocalLLM",
    "RemoteLLM",
    "Scheduler",
    "ServingLLM",
    "load_backend",
    "requantized",
    "served_file",
    "serving_file",
]


def served_file(
    settings: Settings,
    version: ModelVersionInfo | None,
    model_file: Callable[[ModelVersionInfo], Path] | None = None,
) -> Path:
    """The GGUF that serves ``version`` on this host (None: the configured model file):
    ``model_file`` finds the version's file here; a base is re-quantized as configured."""
    if version is None:
        path = Path(settings.llm.model_path)
    else:
        path = model_file(version) if model_file is not None else version.serving_path
    if version is None or version.kind in (ModelKind.BASE, ModelKind.ADAPTER):
        # A merged model is served as the learning loop exported it.
        path = serving_file(settings.llm, path, settings.data_dir)
    return path


def load_backend(
    settings: Settings,
    version: ModelVersionInfo | None,
    scheduler: Scheduler | None = None,
    model_file: Callable[[ModelVersionInfo], Path] | None = None,
) -> LLMBackend:
    """The backend serving ``version`` (None: the configured model file); a local or batched
    model queues its requests on ``scheduler`` when one is given. ``model_file`` finds a
    version's file on this host (fetched from the artifact store on another machine)."""
    llm = settings.llm
    if llm.backend == "remote":
        follows = llm.remote_follows_registry and version is not None
        expected = version.name if version and follows else None
        return RemoteLLM(llm, expected_model=expected, scheduler=scheduler)
    path = served_file(settings, version, model_file)
    adapter = version.adapter_path if version is not None else None
    if llm.backend == "batched":
        return BatchedLLM(llm, model_path=path, lora_path=adapter, scheduler=scheduler)
    return LocalLLM(llm, model_path=path, lora_path=adapter, scheduler=scheduler)
