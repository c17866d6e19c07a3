"""The `assistant` command as a user runs it, in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TESTS_DATA

pytestmark = pytest.mark.slow


def run_cli(data_dir: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ASSISTANT_DATA_DIR=str(data_dir), ASSISTANT_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_ask_json_follows_the_contract(indexed_services) -> None:
    result = run_cli(
        indexed_services.settings.data_dir,
        "ask",
        "What are the symptoms of glaucoma in young children?",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(payload["answer"], str) and payload["answer"]
    assert isinstance(payload["flagged"], bool)
    for citation in payload["citations"]:
        assert {"n", "doc_id", "title", "start", "end", "score"} <= citation.keys()
        assert citation["end"] > citation["start"]


def test_eval_retrieval_measures_the_index(indexed_services) -> None:
    result = run_cli(
        indexed_services.settings.data_dir,
        "eval",
        "retrieval",
        "--qa",
        str(TESTS_DATA / "medquad_qa_sample.jsonl"),
        "--k",
        "10",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    # Exactly the interface's keys (DESIGN.md section 2); recall at another --k goes to stderr.
    assert set(figures) == {
        "n",
        "recall@1",
        "recall@5",
        "recall@10",
        "mrr@10",
        "passage_recall@5",
        "p50_ms",
    }
    assert figures["n"] == 27
    assert "passage_recall@10" in result.stderr
    # A working index finds most of these pages; a broken one scores near zero.
    assert figures["recall@5"] >= 0.8 and figures["mrr@10"] >= 0.6
    assert figures["recall@1"] <= figures["recall@5"] <= figures["recall@10"]


def test_bad_input_gets_a_message_not_a_traceback(tmp_path: Path, indexed_services) -> None:
    empty = run_cli(indexed_services.settings.data_dir, "ask", "   ")
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert "question" in empty.stderr.lower()
    missing = run_cli(tmp_path, "eval", "retrieval", "--qa", str(tmp_path / "none.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    no_index = run_cli(tmp_path / "empty", "ask", "What is asthma?")
    assert no_index.returncode == 2 and "assistant ingest" in no_index.stderr
    assert "Traceback" not in no_index.stderr


def test_python_dash_m_reaches_every_command_group(tmp_path: Path) -> None:
    for group in ("guard", "learn", "eval"):
        result = run_cli(tmp_path, group, "--help", timeout=60)
        assert result.returncode == 0, result.stderr
        assert "Commands:" in result.stdout
