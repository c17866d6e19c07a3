"""``/metrics``: serving figures in Prometheus' text format.

The figures are this process's own: with gunicorn's threads in one process that is the whole
web server; with several processes (or machines) scrape each, or sum them in Prometheus.
"""

from __future__ import annotations

from flask import Blueprint, Response

from web.common import services
from web.openapi import Reply, operation

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
@operation(
    "Serving metrics (Prometheus text format), per process",
    description="TTFT (by cache hit/miss), tokens/s, queue wait, generated tokens, answer "
    "cache lookups, answers by outcome and errors by code.",
    ok={200: Reply("text/plain; version=0.0.4")},
)
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(services().metrics.render(), mimetype=CONTENT_TYPE_LATEST.split(";")[0])
