"""``/metrics``: serving figures in Prometheus' text format.

The figures are this process's own: with gunicorn's threads in one process that is the whole
web server; with several processes (or machines) scrape each, or sum them in Prometheus.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from web.common import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(services().metrics.render(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/metrics": {
        "get": {
            "summary": "Serving metrics (Prometheus text format), per process",
            "description": "TTFT (by cache hit/miss), tokens/s, queue wait, generated tokens, "
            "answer cache lookups, answers by outcome and errors by code.",
            "responses": {"200": {"description": "text/plain; version=0.0.4"}},
        }
    }
}
