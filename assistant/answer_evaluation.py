"""``assistant eval answers``: answer quality and speed against a labelled QA file.

- rougeL: ROUGE-L F1 (longest common word subsequence) of the answer, without its
  disclaimer and citation markers, against the reference answer;
- citation_precision: of all citations in all answers, the share that name the gold
  document; citation_recall: the share of questions whose answer cites the gold document;
- refusal_rate: answers that decline (no sources found, "I don't know", an input guard reply);
- p50_ttft_ms: median time from the question to the first token (retrieval included);
- tokens_per_s: generated tokens after the first over the time spent generating them.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import InvalidInput
from assistant.evaluation import read_jsonl
from assistant.pipeline import NO_SOURCES_REPLY, Answer
from training.evaluate import rouge_l  # one ROUGE-L for the gate and for `eval answers`

_MARKER = re.compile(r"\s*\[\d{1,3}\]")
_REFUSAL = re.compile(
    r"\b(?:i|we) (?:do not|don't|cannot|can't|could not|couldn't) (?:know|find|answer|say|"
    r"determine|provide)|\bnot (?:able|possible) to (?:answer|determine)|"
    r"\bno information (?:about|on)|\bthe sources do not (?:say|answer|mention|provide)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AnswerCase:
    question: str
    doc_id: str
    reference: str


@dataclass(frozen=True)
class AnswerResult:
    """What one question gave: the answer, its cited documents and its timings."""

    text: str  # without the disclaimer
    cited_doc_ids: tuple[str, ...]
    refused: bool
    ttft_ms: float | None
    completion_tokens: int
    generation_s: float


def answer_cases(path: Path, limit: int | None = None) -> list[AnswerCase]:
    cases = []
    for record in read_jsonl(path):
        question, doc_id, reference = (record.get(k) for k in ("question", "doc_id", "answer"))
        if not isinstance(question, str) or not isinstance(doc_id, str):
            raise InvalidInput(f"{path}: every record needs string 'question' and 'doc_id'")
        cases.append(AnswerCase(question, doc_id, reference if isinstance(reference, str) else ""))
        if limit and len(cases) >= limit:
            break
    if not cases:
        raise InvalidInput(f"{path}: no questions found")
    return cases


def plain_answer(answer: Answer) -> str:
    """The answer's own words: no disclaimer, no citation markers."""
    text = answer.text
    if answer.disclaimer and text.endswith(answer.disclaimer):
        text = text[: -len(answer.disclaimer)]
    return _MARKER.sub("", text).strip()


def result_of(answer: Answer) -> AnswerResult:
    text = plain_answer(answer)
    timings = answer.timings
    tokens = int(timings.get("completion_tokens", 0))
    generation_s = max(0.0, (timings.get("total_ms", 0.0) - timings.get("ttft_ms", 0.0)) / 1000)
    return AnswerResult(
        text=text,
        cited_doc_ids=tuple(c.doc_id for c in answer.citations),
        refused=is_refusal(text),
        ttft_ms=timings.get("ttft_ms") if tokens else None,
        completion_tokens=tokens,
        generation_s=generation_s,
    )


def is_refusal(text: str) -> bool:
    return text.strip() == NO_SOURCES_REPLY or bool(_REFUSAL.search(text))


def score_answers(
    answer: Callable[[str], AnswerResult],
    cases: Iterable[AnswerCase],
    progress: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    rouge: list[float] = []
    cited_total = cited_gold = questions_citing_gold = refusals = n = 0
    ttfts: list[float] = []
    tokens = 0
    generation_s = 0.0
    for case in cases:
        result = answer(case.question)
        n += 1
        rouge.append(rouge_l(result.text, case.reference) if case.reference else 0.0)
        cited_total += len(result.cited_doc_ids)
        cited_gold += sum(d == case.doc_id for d in result.cited_doc_ids)
        questions_citing_gold += case.doc_id in result.cited_doc_ids
        refusals += result.refused
        if result.ttft_ms is not None:
            ttfts.append(result.ttft_ms)
        if result.completion_tokens > 1:
            tokens += result.completion_tokens - 1
            generation_s += result.generation_s
        if progress is not None:
            progress(1)
    return {
        "n": n,
        "rougeL": round(statistics.fmean(rouge), 4) if rouge else 0.0,
        "citation_precision": round(cited_gold / cited_total, 4) if cited_total else 0.0,
        "citation_recall": round(questions_citing_gold / n, 4) if n else 0.0,
        "refusal_rate": round(refusals / n, 4) if n else 0.0,
        "p50_ttft_ms": round(statistics.median(ttfts), 1) if ttfts else 0.0,
        "tokens_per_s": round(tokens / generation_s, 2) if generation_s > 0 else 0.0,
    }
