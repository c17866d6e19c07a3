"""Server-sent event responses that cannot pin a server thread.

A client that stops reading but keeps its connection open leaves the server's write blocked
once the socket buffers are full; the thread would wait there for good (the model is freed
at the end of generation already: assistant/llm/local.py). So the connection's socket gets a
write timeout for the stream: past it the write fails, the server closes the connection and
the answer's generator is closed, which stops any generation still running. A client that
went away is noticed the same way, at the next write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context

logger = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Where the WSGI servers we run under put the connection's socket.
SOCKET_KEYS = ("gunicorn.socket", "werkzeug.socket")


def event_stream(events: Iterator[str], write_timeout_s: float) -> Response:
    """A text/event-stream response of ``events`` whose every write must finish in
    ``write_timeout_s`` seconds."""
    bound_writes(request.environ, write_timeout_s)
    return Response(stream_with_context(events), mimetype="text/event-stream", headers=SSE_HEADERS)


def bound_writes(environ: dict[str, Any], timeout_s: float) -> bool:
    """Give the request's socket a timeout; False where the server does not expose it."""
    for key in SOCKET_KEYS:
        connection = environ.get(key)
        if connection is not None and hasattr(connection, "settimeout"):
            connection.settimeout(timeout_s)
            return True
    logger.debug("no socket in the WSGI environ: stream writes are not bounded")
    return False
