"""What every LLM backend offers the answer pipeline."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

ChatMessage = dict[str, str]


@runtime_checkable
class LLMBackend(Protocol):
    """A chat model that streams replies; local (llama.cpp) or remote (OpenAI-compatible)."""

    @property
    def name(self) -> str: ...

    @property
    def context_size(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as the model counts them (an upper estimate where unknown)."""
        ...

    def stream_chat(
        self,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        """The reply, one piece (token) at a time; closing the iterator stops generation.

        ``temperature`` None: the settings'; ``stop``: more stop sequences for this request.
        """
        ...

    def close(self) -> None:
        """Free the model (memory, connections)."""
        ...
