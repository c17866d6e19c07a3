"""A fair request queue in front of a model that serves ``capacity`` generations at a time."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from assistant.errors import ServerBusy

logger = logging.getLogger(__name__)


class Scheduler:
    """First come, first served slots with a bounded queue (back-pressure) and a wait limit.

    The caller's own thread runs the generation while it holds the slot, so closing the
    caller's stream (a client that went away) frees the slot at the next token. ``capacity``
    requests hold a slot at once: 1 for a llama.cpp model in this process (it decodes one
    stream), the server's slot count for a batching server (llm.backend=batched).
    """

    def __init__(
        self,
        max_waiting: int,
        wait_timeout_s: float,
        retry_after_s: int = 2,
        on_wait: Callable[[float], None] | None = None,
        capacity: int = 1,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.wait_timeout_s = wait_timeout_s
        self.retry_after_s = retry_after_s
        self.on_wait = on_wait
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._active = 0  # requests holding a slot

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def busy(self) -> bool:
        """Whether every slot is taken."""
        return self._active >= self.capacity

    @property
    def active(self) -> int:
        """Requests holding a slot now."""
        return self._active

    @property
    def full(self) -> bool:
        """Whether a new request would be refused now."""
        return (self.busy or bool(self._waiting)) and len(self._waiting) >= self.max_waiting

    def refuse_if_full(self) -> None:
        if self.full:
            raise ServerBusy(
                "the model is busy with other requests; try again shortly", self.retry_after_s
            )

    def acquire(self) -> tuple[float, Callable[[], None]]:
        """Wait for the model: (seconds waited, release). ServerBusy when full or waited too
        long. ``release`` may be called more than once (from any thread)."""
        started = time.perf_counter()
        ticket = object()
        with self._cond:
            self.refuse_if_full()
            self._waiting.append(ticket)
            deadline = started + self.wait_timeout_s
            try:
                # FIFO: only the first in line may take a free slot.
                while self.busy or self._waiting[0] is not ticket:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        raise ServerBusy(
                            f"waited {self.wait_timeout_s:.0f}s for the model; try again",
                            self.retry_after_s,
                        )
                    self._cond.wait(remaining)
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the next in line may now be first
                raise
            self._waiting.popleft()
            self._active += 1
            if self._waiting and not self.busy:
                self._cond.notify_all()  # another slot is free for the next in line
        waited = time.perf_counter() - started
        if self.on_wait is not None:
            self.on_wait(waited)
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            with self._cond:
                if not released.is_set():
                    released.set()
                    self._active -= 1
                    self._cond.notify_all()

        return waited, release

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold the model for the block; yields the seconds waited."""
        waited, release = self.acquire()
        try:
            yield waited
        finally:
            release()
