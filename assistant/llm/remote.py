"""The remote LLM backend: any OpenAI-compatible server (llama.cpp's server, vLLM, Ollama)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from assistant.errors import ContextOverflow, GenerationTimeout, ModelUnavailable, ServerBusy
from assistant.llm.base import ChatMessage
from assistant.settings import LLMSettings

if TYPE_CHECKING:
    import httpx

    from assistant.llm.scheduler import Scheduler

logger = logging.getLogger(__name__)

# No tokenizer of the remote model here: ~3 characters a token over-counts English text
# (SmolLM2 and Llama tokenizers average ~4), so prompts stay inside the window.
CHARS_PER_TOKEN = 3.0


class RemoteLLM:
    """Streams chat completions over HTTP (server-sent events) from ``settings.remote_url``.

    Several such servers behind a load balancer is how a deployment outgrows one machine.
    With a ``scheduler`` (as a web host has: Services.llm) this process sends at most its
    capacity (``llm.parallel``) requests at once and queues the rest first come, first served,
    so a web host keeps its threads for pages when many ask; without one, queueing is the
    server's. The server's own 429/503 become ServerBusy here.
    """

    def __init__(
        self,
        settings: LLMSettings,
        client: httpx.Client | None = None,
        expected_model: str | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        """``expected_model``: the model version this backend stands for; the server must be
        serving it under that name (`assistant model-server` does), or the request is
        refused as busy while the server switches, so no answer is put under a version
        that did not write it."""
        import httpx

        if not settings.remote_url:
            raise ModelUnavailable("set ASSISTANT_LLM__REMOTE_URL for the remote backend")
        self.settings = settings
        self.expected_model = expected_model
        self.scheduler = scheduler
        self.base_url = settings.remote_url.rstrip("/")
        headers = {"Authorization": f"Bearer {settings.remote_api_key}"}
        self._client = client or httpx.Client(
            headers=headers if settings.remote_api_key else {},
            timeout=httpx.Timeout(settings.request_timeout_s, connect=5.0),
        )

    @property
    def name(self) -> str:
        return self.settings.remote_model or "remote"

    @property
    def context_size(self) -> int:
        return self.settings.n_ctx

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def stream_chat(
        self,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        # With a scheduler: ServerBusy at once when its queue is full.
        with self.scheduler.slot() if self.scheduler is not None else contextlib.nullcontext():
            yield from self._stream(messages, max_tokens, timeout_s, temperature, stop)

    def _stream(
        self,
        messages: list[ChatMessage],
        max_tokens: int | None,
        timeout_s: float | None,
        temperature: float | None,
        stop: Sequence[str],
    ) -> Iterator[str]:
        import httpx

        s = self.settings
        limit = timeout_s or s.request_timeout_s
        deadline = time.perf_counter() + limit
        body: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": max_tokens or s.max_tokens,
            "temperature": s.temperature if temperature is None else temperature,
            "top_p": s.top_p,
            "repeat_penalty": s.repeat_penalty,
            "seed": s.seed,
        }
        if self.expected_model:
            self._check_served_model(self.expected_model)
            body["model"] = self.expected_model
        elif s.remote_model:
            body["model"] = s.remote_model
        if s.stop or stop:
            body["stop"] = [*s.stop, *stop]
        try:
            with self._client.stream(
                "POST", f"{self.base_url}/chat/completions", json=body
            ) as response:
                if response.status_code != 200:
                    _raise_for(response.status_code, response.read().decode("utf-8", "replace"))
                for line in response.iter_lines():
                    # Checked on every line: a server that sends only comments or keep-alive
                    # lines must not hold the request past its deadline.
                    if time.perf_counter() > deadline:
                        raise GenerationTimeout(f"the answer took longer than {limit:.0f}s")
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:") :].strip()
                    if data == "[DONE]":
                        break
                    text = _delta_text(data)
                    if text:
                        yield text
        except httpx.TimeoutException as exc:
            raise GenerationTimeout(f"the model server did not answer in time: {exc}") from exc
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"the model server failed: {type(exc).__name__}") from exc

    def served_models(self) -> list[str]:
        """The model names the server lists (``/models``, OpenAI's shape)."""
        import httpx

        try:
            response = self._client.get(f"{self.base_url}/models", timeout=5.0)
            response.raise_for_status()
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelUnavailable(f"the model server did not list its models: {exc}") from exc

    def _check_served_model(self, wanted: str) -> None:
        served = self.served_models()
        if wanted not in served:
            logger.info("model server serves %s, not %s yet", served, wanted)
            raise ServerBusy(
                f"the model server is switching to model version {wanted}; try again shortly",
                self.settings.retry_after_s,
            )

    def close(self) -> None:
        self._client.close()


def _raise_for(status: int, detail: str) -> None:
    logger.warning("model server answered %s", status)
    if status in (429, 503):
        raise ServerBusy("the model server is busy; try again shortly")
    if status == 400 and ("context" in detail or "exceed" in detail):
        raise ContextOverflow("the prompt does not fit in the remote model's context")
    raise ModelUnavailable(f"the model server answered {status}")


def _delta_text(data: str) -> str | None:
    """The text of one streamed chunk; ModelUnavailable for one that is not a chunk."""
    try:
        chunk = json.loads(data)
        choice = (chunk.get("choices") or [{}])[0]
        text = (choice.get("delta") or {}).get("content")
    except (ValueError, AttributeError, IndexError, TypeError) as exc:
        raise ModelUnavailable(f"the model server sent a malformed chunk: {data[:80]!r}") from exc
    return text if isinstance(text, str) else None
