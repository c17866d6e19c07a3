"""Serving follows the registry: the active model version, swapped in without a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from assistant.errors import ModelUnavailable
from assistant.llm.base import ChatMessage, LLMBackend
from assistant.llm.registry import ModelVersionInfo

logger = logging.getLogger(__name__)

MAX_PINNED = 2  # versions other than the active one kept loaded for requests that name them


@dataclass(frozen=True)
class Lease:
    """The model one request uses from start to end, and the version it belongs to."""

    version_id: int | None
    backend: LLMBackend


@dataclass
class _Loaded:
    version_id: int | None
    backend: LLMBackend
    users: int = 0
    retired: bool = False


class ServingLLM:
    """An LLMBackend that serves whichever model version the registry says is active.

    Every ``check_every_s`` seconds a request looks at the registry (one small query). When
    the active version changed, that request loads the new model beside the old one while
    others carry on with the old; then new requests get the new model, requests in flight
    finish on the old one, and the last of them frees it. Rollback is the same move.
    """

    def __init__(
        self,
        load: Callable[[ModelVersionInfo | None], LLMBackend],
        active: Callable[[], ModelVersionInfo | None],
        check_every_s: float = 2.0,
    ) -> None:
        self._load = load
        self._active = active
        self.check_every_s = check_every_s
        self._current: _Loaded | None = None
        self._lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._next_check = 0.0
        self._live: list[_Loaded] = []
        self._pinned: dict[int, _Loaded] = {}  # versions requests named, besides the active

    @classmethod
    def fixed(cls, backend: LLMBackend) -> ServingLLM:
        """Always ``backend`` (no registry): for tools and benchmarks."""
        return cls(lambda _info: backend, lambda: None, check_every_s=1e9)

    # ---- following the registry -------------------------------------------------------------
    def refresh(self, force: bool = False) -> None:
        """Switch to the registry's active version if it changed (at most every few seconds)."""
        now = time.monotonic()
        if self._current is not None and now < self._next_check and not force:
            return
        # One request checks and loads; the others carry on with the current model meanwhile.
        if not self._switch_lock.acquire(blocking=self._current is None or force):
            return
        try:
            if self._current is not None and time.monotonic() < self._next_check and not force:
                return
            self._next_check = time.monotonic() + self.check_every_s
            try:
                info = self._active()
            except Exception:
                logger.exception("could not read the active model version")
                if self._current is not None:
                    return
                info = None
            wanted = info.id if info is not None else None
            if self._current is not None and (self._current.version_id == wanted or info is None):
                return
            try:
                backend = self._load(info)
            except Exception:
                if self._current is None:
                    raise
                logger.exception("model version %s could not be loaded; keeping the old", wanted)
                return
            self._install(_Loaded(wanted, backend))
        finally:
            self._switch_lock.release()

    def _install(self, new: _Loaded) -> None:
        with self._lock:
            old, self._current = self._current, new
            self._live.append(new)
            free = old is not None and self._retire(old)
        if old is not None:
            logger.info("serving model version %s (was %s)", new.version_id, old.version_id)
            if free:
                self._free(old)
        else:
            logger.info("serving model version %s", new.version_id)

    @staticmethod
    def _retire(loaded: _Loaded) -> bool:
        loaded.retired = True
        return loaded.users == 0

    def _free(self, loaded: _Loaded) -> None:
        with self._lock:
            if loaded in self._live:
                self._live.remove(loaded)
        loaded.backend.close()
        logger.info("model version %s freed", loaded.version_id)

    @contextmanager
    def use(self, version: ModelVersionInfo | None = None) -> Iterator[Lease]:
        """The current model (or ``version``, when a request names one) for the whole of one
        request; it is not freed before the end."""
        self.refresh()
        if version is not None and (
            self._current is None or self._current.version_id != version.id
        ):
            loaded = self._pinned_model(version)
        else:
            with self._lock:
                current = self._current
                if current is None:
                    raise ModelUnavailable("no model is loaded")
                current.users += 1
                loaded = current
        try:
            yield Lease(loaded.version_id, loaded.backend)
        finally:
            with self._lock:
                loaded.users -= 1
                free = loaded.retired and loaded.users == 0
            if free:
                self._free(loaded)

    def _pinned_model(self, version: ModelVersionInfo) -> _Loaded:
        """A version other than the active one, loaded on first request and kept (the last
        ``MAX_PINNED`` of them) for requests that name it; counted as in use on return."""
        with self._switch_lock:
            with self._lock:
                loaded = self._pinned.pop(version.id, None)
                if loaded is not None:
                    self._pinned[version.id] = loaded  # most recently used last
                    loaded.users += 1
                    return loaded
            backend = self._load(version)
            loaded = _Loaded(version.id, backend, users=1)
            with self._lock:
                self._pinned[version.id] = loaded
                self._live.append(loaded)
                evicted = []
                while len(self._pinned) > MAX_PINNED:
                    oldest = next(iter(self._pinned))
                    evicted.append(self._pinned.pop(oldest))
                free = [e for e in evicted if self._retire(e)]
        for old in free:
            self._free(old)
        return loaded

    def check_capacity(self) -> None:
        """ServerBusy now, before a response starts, if the current model's queue is full."""
        self.refresh()
        loaded = self._current
        scheduler = getattr(loaded.backend, "scheduler", None) if loaded is not None else None
        if scheduler is not None:
            scheduler.refuse_if_full()

    @property
    def waiting(self) -> int:
        """Requests waiting for the current model (0 for a remote one without a queue)."""
        loaded = self._current
        scheduler = getattr(loaded.backend, "scheduler", None) if loaded is not None else None
        return int(scheduler.waiting) if scheduler is not None else 0

    @property
    def version_id(self) -> int | None:
        self.refresh()
        return self._current.version_id if self._current is not None else None

    @property
    def loaded_versions(self) -> list[int | None]:
        """Versions whose model is in memory (the old one stays while requests finish on it)."""
        with self._lock:
            return [loaded.version_id for loaded in self._live]

    # ---- LLMBackend, on the current model ---------------------------------------------------
    @property
    def name(self) -> str:
        with self.use() as lease:
            return lease.backend.name

    @property
    def context_size(self) -> int:
        with self.use() as lease:
            return lease.backend.context_size

    def count_tokens(self, text: str) -> int:
        with self.use() as lease:
            return lease.backend.count_tokens(text)

    def stream_chat(
        self,
        messages: list[ChatMessage],
        max_tokens: int | None = None,
        *,
        timeout_s: float | None = None,
        temperature: float | None = None,
        stop: Sequence[str] = (),
    ) -> Iterator[str]:
        with self.use() as lease:
            yield from lease.backend.stream_chat(
                messages, max_tokens, timeout_s=timeout_s, temperature=temperature, stop=stop
            )

    def close(self) -> None:
        with self._lock:
            live, self._live, self._current = list(self._live), [], None
            self._pinned = {}
        for loaded in live:
            loaded.backend.close()
