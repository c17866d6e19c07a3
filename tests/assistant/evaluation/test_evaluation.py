from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.errors import InvalidInput
from assistant.evaluation.retrieval import (
    RETRIEVAL_KEYS,
    RetrievalCase,
    evaluate_retrieval,
    retrieval_cases,
)
from retrieval.types import Chunk, Hit


def hit(doc_id: str, start: int, end: int, rank: int) -> Hit:
    return Hit(Chunk(doc_id, "t", "m", "", start, end, "x"), 1.0 / rank, 0.5, rank)


def test_metrics_follow_their_definitions() -> None:
    rankings = {
        "q1": [hit("a", 0, 10, 1), hit("b", 0, 10, 2)],  # gold a at rank 1, span overlaps
        "q2": [hit("x", 0, 10, 1), hit("x", 10, 20, 2), hit("b", 50, 60, 3)],  # b is 2nd doc
        "q3": [hit("x", 0, 10, 1)],  # miss
    }
    cases = [
        RetrievalCase("q1", "a", ((5, 8),)),
        RetrievalCase("q2", "b", ((0, 10),)),  # right doc, wrong passage
        RetrievalCase("q3", "c", ()),
    ]
    figures = evaluate_retrieval(lambda q, depth: rankings[q], cases, k=5)
    assert figures["n"] == 3
    assert figures["recall@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["recall@5"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["mrr@10"] == pytest.approx((1 + 0.5) / 3, abs=1e-4)
    assert figures["passage_recall@5"] == 0.5  # of the two cases with spans
    assert set(figures) == set(RETRIEVAL_KEYS)
    deeper = evaluate_retrieval(lambda q, depth: rankings[q], cases, k=3)
    assert set(deeper) == {*RETRIEVAL_KEYS, "passage_recall@3"}


def test_bad_qa_files_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        retrieval_cases(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(InvalidInput, match="invalid JSON"):
        retrieval_cases(tmp_path / "bad.jsonl")
    (tmp_path / "nodoc.jsonl").write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(InvalidInput, match="doc_id"):
        retrieval_cases(tmp_path / "nodoc.jsonl")
