"""Evaluation commands' measurements (retrieval first; PII and answers join with their issues)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import InvalidInput
from retrieval.types import Hit

# Enough passages for ten distinct documents: hybrid search lists at most
# retrieval.max_per_doc (5) passages of one document.
DOC_RANKING_DEPTH = 50

# What `assistant eval retrieval --json` prints (DESIGN.md section 2), exactly.
RETRIEVAL_KEYS = (
    "n",
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "passage_recall@5",
    "p50_ms",
)


@dataclass(frozen=True)
class RetrievalCase:
    question: str
    doc_id: str
    spans: tuple[tuple[int, int], ...]  # gold answer/evidence spans in the document text


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        raise InvalidInput(f"no such file: {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise InvalidInput(f"{path}:{number}: a record must be a JSON object")
                yield record


def answer_spans(record: dict[str, Any]) -> tuple[tuple[int, int], ...]:
    """Where a QA record's answer stands in its document: the answer span (MedQuAD) and the
    evidence spans (CUAD)."""
    spans: list[tuple[int, int]] = []
    if isinstance(record.get("answer_char_start"), int) and isinstance(
        record.get("answer_char_end"), int
    ):
        spans.append((record["answer_char_start"], record["answer_char_end"]))
    for span in record.get("evidence_spans") or []:
        if isinstance(span, dict) and {"start", "end"} <= span.keys():
            try:
                spans.append((int(span["start"]), int(span["end"])))
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"an evidence span needs integer start and end: {span}") from exc
    return tuple(spans)


def retrieval_cases(path: Path, limit: int | None = None) -> list[RetrievalCase]:
    cases = []
    for record in read_jsonl(path):
        question, doc_id = record.get("question"), record.get("doc_id")
        if not isinstance(question, str) or not isinstance(doc_id, str):
            raise InvalidInput(f"{path}: every record needs string 'question' and 'doc_id'")
        cases.append(RetrievalCase(question, doc_id, answer_spans(record)))
        if limit and len(cases) >= limit:
            break
    if not cases:
        raise InvalidInput(f"{path}: no questions found")
    return cases


def distinct_docs(hits: list[Hit]) -> list[str]:
    seen: list[str] = []
    for hit in hits:
        if hit.chunk.doc_id not in seen:
            seen.append(hit.chunk.doc_id)
    return seen


def overlaps(hit: Hit, case: RetrievalCase) -> bool:
    chunk = hit.chunk
    return chunk.doc_id == case.doc_id and any(
        chunk.start < end and start < chunk.end for start, end in case.spans
    )


def evaluate_retrieval(
    search: Callable[[str, int], list[Hit]],
    cases: list[RetrievalCase],
    k: int = 5,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Document recall@1/5/10, MRR@10, passage recall@5 (and @k) and latency of ``search``.

    Document metrics rank distinct documents in the order their first chunk appears.
    Passage recall@k counts a hit when one of the top ``k`` chunks overlaps a gold span;
    it is null when no case has spans.
    """
    recall = {1: 0, 5: 0, 10: 0}
    reciprocal_ranks = 0.0
    cutoffs = sorted({5, k})
    passage_hits = dict.fromkeys(cutoffs, 0)
    with_spans = 0
    latencies = []
    for case in cases:
        started = time.perf_counter()
        hits = search(case.question, DOC_RANKING_DEPTH)
        latencies.append((time.perf_counter() - started) * 1000)
        docs = distinct_docs(hits)
        rank = docs.index(case.doc_id) + 1 if case.doc_id in docs else None
        for cutoff in recall:
            recall[cutoff] += rank is not None and rank <= cutoff
        if rank is not None and rank <= 10:
            reciprocal_ranks += 1 / rank
        if case.spans:
            with_spans += 1
            for cutoff in cutoffs:
                passage_hits[cutoff] += any(overlaps(hit, case) for hit in hits[:cutoff])
        if progress:
            progress(1)
    n = len(cases)
    figures: dict[str, Any] = {
        "n": n,
        "recall@1": round(recall[1] / n, 4),
        "recall@5": round(recall[5] / n, 4),
        "recall@10": round(recall[10] / n, 4),
        "mrr@10": round(reciprocal_ranks / n, 4),
        "p50_ms": round(statistics.median(latencies), 2),
    }
    # The keys are fixed by the interface (DESIGN.md section 2); a --k other than 5 is
    # reported as passage_recall@k by the caller, outside the JSON object.
    figures["passage_recall@5"] = round(passage_hits[5] / with_spans, 4) if with_spans else None
    if k != 5:
        figures[f"passage_recall@{k}"] = (
            round(passage_hits[k] / with_spans, 4) if with_spans else None
        )
    return figures
