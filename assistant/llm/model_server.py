"""The model-server role: llama.cpp's server on this host serves the registry's active version.

Web hosts set ``llm.backend=remote``, ``llm.remote_url`` to this host and
``llm.remote_follows_registry=true``. This agent follows the registry as every other process
does: when a version is promoted or rolled back, it fetches that version's file from the
artifact store (verified), and restarts the server on the same address with the new file,
named after the version. Web hosts send the version's name with each request and check that
the server lists it, so an answer always names the version that wrote it; during the restart
(a second or two for a small model) requests get 503 with Retry-After.

Before the restart the agent lets the answers in flight finish (up to ``DRAIN_S``): web hosts
that already follow the new version send nothing more to the old one, so the server empties
within one answer's time, and nobody's answer is cut off by a promotion.

If the new version does not start, the agent starts the previous one again and retries at
the next round: the host never stays without a model because of a bad file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from assistant.llm import registry
from assistant.llm.registry import ModelVersionInfo
from assistant.storage.db import Database

logger = logging.getLogger(__name__)


# How long a switch waits for the answers in flight on the old version: longer than an
# answer takes here, short enough that a promotion still reaches the hosts within 30 s.
DRAIN_S = 15.0


class RunningServer(Protocol):
    def stop(self) -> None: ...

    def busy_slots(self) -> int | None:
        """Answers being decoded now; None when unknown (then nothing is waited for)."""
        ...


# (the version, its file on this host) -> a server that lists it under the version's name
StartServer = Callable[[ModelVersionInfo, Path], RunningServer]
ModelFile = Callable[[ModelVersionInfo], Path]


class ModelServerAgent:
    """Keeps one server on this host serving the active model version."""

    def __init__(
        self, db: Database, model_file: ModelFile, start: StartServer, drain_s: float = DRAIN_S
    ) -> None:
        """``model_file``: the version's file here (fetched and verified from the artifact
        store when another host made it)."""
        self.db = db
        self.model_file = model_file
        self.start = start
        self.drain_s = drain_s
        self.serving: ModelVersionInfo | None = None
        self._server: RunningServer | None = None

    def sync_once(self) -> bool:
        """Serve the registry's active version if it is not served yet; whether it switched."""
        active = registry.active_version(self.db)
        if active is None or (self.serving is not None and self.serving.id == active.id):
            return False
        path = self.model_file(active)  # fetched and verified before anything stops
        previous = self.serving
        self._stop_server()
        try:
            self._serve(active, path)
        except Exception:
            logger.exception("model version %s did not start", active.name)
            if previous is not None:
                self._serve(previous, self.model_file(previous))
            raise
        logger.info(
            "model server: %s now serves (was %s)",
            active.name,
            previous.name if previous else "nothing",
        )
        return True

    def _serve(self, version: ModelVersionInfo, path: Path) -> None:
        self._server = self.start(version, path)
        self.serving = version

    def _stop_server(self) -> None:
        server, self._server, self.serving = self._server, None, None
        if server is not None:
            self._drain(server)
            server.stop()

    def _drain(self, server: RunningServer) -> None:
        """Wait until the server decodes nothing, at most ``drain_s``."""
        deadline = time.monotonic() + self.drain_s
        while (busy := server.busy_slots()) and time.monotonic() < deadline:
            time.sleep(0.2)
        if busy:
            logger.warning("model server: %d answers still in flight are cut by the switch", busy)

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Follow the registry until ``stop`` is set; then stop the server."""
        try:
            while True:
                try:
                    self.sync_once()
                except Exception:  # a database or store hiccup, or a bad file: next round
                    logger.exception("model server sync failed; retrying")
                if stop.wait(interval_s):
                    return
        finally:
            self._stop_server()
