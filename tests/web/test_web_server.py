"""The product served by gunicorn, as `assistant serve` runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from assistant.settings import Settings, WebSettings
from web.server import gunicorn_options


def test_gunicorn_runs_one_threaded_worker(tmp_path) -> None:  # type: ignore[no-untyped-def]
    web = WebSettings(host="0.0.0.0", port=8123, threads=12)
    options = gunicorn_options(Settings(data_dir=tmp_path, web=web))
    assert options["bind"] == "0.0.0.0:8123"
    assert options["workers"] == 1
    assert options["worker_class"] == "gthread"
    assert options["threads"] == 12
    assert options["timeout"] == 300
    assert options["preload_app"] is False
    ipv6 = gunicorn_options(Settings(data_dir=tmp_path, web=WebSettings(host="::1", port=80)))
    assert ipv6["bind"] == "[::1]:80"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_server_serves_the_app(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(tmp_path),
        "ASSISTANT_WEB__PORT": str(port),
        "ASSISTANT_WEB__THREADS": "2",
        "ASSISTANT_WEB__ADMIN_PASSWORD": "admin-password-1",
    }
    code = (
        "from assistant.settings import Settings; from web.server import run_server; "
        "run_server(Settings())"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health") as r:
                    health = json.load(r)
                    headers = r.headers
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert health["status"] == "ok" and health["database"] is True
        assert headers["X-Frame-Options"] == "DENY"
        assert "gunicorn" in headers.get("Server", "")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
