"""The chat page script, run by Node on a small fake DOM against a scripted server.

No browser is available on these machines; this catches script errors and checks the
behaviour the page depends on: CSRF header, SSE parsing across chunk boundaries, citation
buttons, the passage panel, feedback, text-only insertion of model output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
def test_chat_script_in_a_fake_dom() -> None:
    result = subprocess.run(
        [
            NODE or "node",
            str(ROOT / "tests/web/js/chat_page.test.mjs"),
            str(ROOT / "web/static/chat.js"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout


@pytest.mark.skipif(NODE is None, reason="Node.js is not installed")
@pytest.mark.parametrize("script", ["chat.js", "admin.js"])
def test_scripts_parse(script: str) -> None:
    result = subprocess.run(
        [NODE or "node", "--check", str(ROOT / "web/static" / script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
