"""``assistant eval answers``: what a reader gets, against a labelled QA file.

Quality, per answer (the disclaimer and citation markers removed):
- rougeL: ROUGE-L F1 (longest common word subsequence) against the reference answer;
- citation_precision: of all citations, the share naming the gold document;
  citation_recall and gold_cited_rate: the share of answers citing the gold document;
- refusal_rate: answers that decline (abstentions and guard replies included);
- degenerate_rate: answers with nothing to read ("The answer is: 1", under three content
  words), abstentions not counted as degenerate;
- unsupported_sentence_rate: of all answer sentences, those whose content words are mostly
  (over half) absent from the passages the sentence cites; an uncited sentence counts as
  unsupported;
- abstention_rate: answers that said the sources do not answer (``abstained``);
- evidence_cited_rate: of the questions with evidence spans (CUAD), those with a citation
  overlapping one; null when the file has none;
- model_answer_rate / fallback_rate: where the answers came from (origin model / evidence).
Speed: p50_ttft_ms (question to first text shown) and tokens_per_s (generated tokens after
the first over the time spent generating them).

``extractive_baseline`` holds the same quality figures, in the same run, for the plainest
grounded answer: the 3 sentences of the top retrieved passage most similar to the question.

A record may hold a conversation: ``first`` (asked and answered first, not scored) and
``followup`` (the scored question, answered with the first turn as its history).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.asking.answer import NO_SOURCES_REPLY, Answer
from assistant.errors import InvalidInput
from assistant.evaluation.retrieval import read_jsonl
from safety.grounding import content_words, is_degenerate, split_cited, split_sentences
from training.evaluate import rouge_l  # one ROUGE-L for the gate and for `eval answers`

_MARKER = re.compile(r"\s*\[\d{1,3}\]")
_REFUSAL = re.compile(
    r"\b(?:i|we) (?:do not|don't|cannot|can't|could not|couldn't) (?:know|find|answer|say|"
    r"determine|provide)|\bnot (?:able|possible) to (?:answer|determine)|"
    r"\bno information (?:about|on)|\bthe sources (?:i can search )?do not (?:say|answer|"
    r"mention|provide)",
    re.IGNORECASE,
)
BASELINE_SENTENCES = 3
SUPPORTED_SHARE = 0.5  # a sentence is supported when over half its content words are cited


@dataclass(frozen=True)
class AnswerCase:
    question: str
    doc_id: str | None  # None for a question the corpus cannot answer
    reference: str
    evidence_spans: tuple[tuple[int, int], ...] = ()  # CUAD clause spans in the gold document
    history: tuple[str, ...] = ()  # earlier questions of the conversation, asked first


@dataclass(frozen=True)
class CitedPassage:
    n: int
    doc_id: str
    start: int
    end: int
    text: str  # the document text of the span


@dataclass(frozen=True)
class AnswerResult:
    """What one question gave: the answer, its cited passages and its timings."""

    text: str  # without the disclaimer
    cited: tuple[CitedPassage, ...]
    refused: bool
    ttft_ms: float | None
    completion_tokens: int
    generation_s: float
    abstained: bool = False
    origin: str = "model"
    cited_by_sentence: tuple[tuple[str, tuple[int, ...]], ...] = field(default=())

    @property
    def cited_doc_ids(self) -> tuple[str, ...]:
        return tuple(c.doc_id for c in self.cited)


def answer_cases(path: Path, limit: int | None = None) -> list[AnswerCase]:
    cases = []
    for record in read_jsonl(path):
        question = record.get("followup", record.get("question"))
        doc_id = record.get("doc_id")
        reference = record.get("answer")
        if not isinstance(question, str) or (doc_id is not None and not isinstance(doc_id, str)):
            raise InvalidInput(f"{path}: every record needs a string 'question' (or 'followup')")
        spans = tuple(
            (int(s["start"]), int(s["end"]))
            for s in record.get("evidence_spans") or []
            if isinstance(s, dict) and {"start", "end"} <= s.keys()
        )
        first = record.get("first")
        cases.append(
            AnswerCase(
                question,
                doc_id,
                reference if isinstance(reference, str) else "",
                spans,
                (first,) if isinstance(first, str) else (),
            )
        )
        if limit and len(cases) >= limit:
            break
    if not cases:
        raise InvalidInput(f"{path}: no questions found")
    return cases


def plain_answer(answer: Answer) -> str:
    """The answer's own words: no disclaimer, no citation markers."""
    return _MARKER.sub("", answer_body(answer)).strip()


def answer_body(answer: Answer) -> str:
    """The answer with its markers, without the disclaimer."""
    text = answer.text
    if answer.disclaimer and text.endswith(answer.disclaimer):
        text = text[: -len(answer.disclaimer)]
    return text.strip()


def result_of(answer: Answer, document_text: Callable[[str], str | None]) -> AnswerResult:
    body = answer_body(answer)
    text = _MARKER.sub("", body).strip()
    timings = answer.timings
    tokens = int(timings.get("completion_tokens", 0))
    generation_s = max(0.0, (timings.get("total_ms", 0.0) - timings.get("ttft_ms", 0.0)) / 1000)
    cited = []
    for c in answer.citations:
        document = document_text(c.doc_id) or ""
        cited.append(CitedPassage(c.n, c.doc_id, c.start, c.end, document[c.start : c.end]))
    by_sentence = tuple(split_cited(s) for s in split_sentences(body))
    return AnswerResult(
        text=text,
        cited=tuple(cited),
        refused=is_refusal(text),
        ttft_ms=timings.get("ttft_ms"),
        completion_tokens=tokens,
        generation_s=generation_s,
        abstained=answer.abstained,
        origin=answer.origin,
        cited_by_sentence=by_sentence,
    )


def is_refusal(text: str) -> bool:
    return text.strip() == NO_SOURCES_REPLY or bool(_REFUSAL.search(text))


def unsupported_sentences(result: AnswerResult) -> tuple[int, int]:
    """(unsupported, all) sentences of a non-abstained answer, against what each cites."""
    if result.abstained or result.refused:
        return 0, 0
    passages = {c.n: c.text for c in result.cited}
    unsupported = total = 0
    for sentence, cited in result.cited_by_sentence:
        words = content_words(sentence)
        if not words:
            continue
        total += 1
        known = set(content_words(" ".join(passages.get(n, "") for n in cited)))
        if not cited or sum(w in known for w in words) / len(words) <= SUPPORTED_SHARE:
            unsupported += 1
    return unsupported, total


@dataclass
class _Tally:
    n: int = 0
    rouge: list[float] = field(default_factory=list)
    cited_total: int = 0
    cited_gold: int = 0
    with_gold: int = 0
    citing_gold: int = 0
    refusals: int = 0
    degenerate: int = 0
    abstained: int = 0
    with_spans: int = 0
    citing_span: int = 0
    sentences: int = 0
    unsupported: int = 0
    from_model: int = 0
    fallback: int = 0

    def add(self, case: AnswerCase, result: AnswerResult) -> None:
        self.n += 1
        self.rouge.append(rouge_l(result.text, case.reference) if case.reference else 0.0)
        self.cited_total += len(result.cited)
        self.refusals += result.refused
        self.abstained += result.abstained
        self.degenerate += not (result.abstained or result.refused) and is_degenerate(result.text)
        self.from_model += result.origin == "model" and not result.abstained
        self.fallback += result.origin == "evidence"
        bad, total = unsupported_sentences(result)
        self.unsupported += bad
        self.sentences += total
        if case.doc_id is not None:
            self.with_gold += 1
            self.cited_gold += sum(d == case.doc_id for d in result.cited_doc_ids)
            self.citing_gold += case.doc_id in result.cited_doc_ids
        if case.evidence_spans:
            self.with_spans += 1
            self.citing_span += any(
                c.doc_id == case.doc_id
                and any(c.start < b and a < c.end for a, b in case.evidence_spans)
                for c in result.cited
            )

    def figures(self) -> dict[str, Any]:
        n = max(1, self.n)
        gold_rate = round(self.citing_gold / self.with_gold, 4) if self.with_gold else None
        return {
            "rougeL": round(statistics.fmean(self.rouge), 4) if self.rouge else 0.0,
            "citation_precision": (
                round(self.cited_gold / self.cited_total, 4) if self.cited_total else 0.0
            ),
            "citation_recall": gold_rate if gold_rate is not None else 0.0,
            "refusal_rate": round(self.refusals / n, 4),
            "degenerate_rate": round(self.degenerate / n, 4),
            "gold_cited_rate": gold_rate if gold_rate is not None else 0.0,
            "unsupported_sentence_rate": (
                round(self.unsupported / self.sentences, 4) if self.sentences else 0.0
            ),
            "abstention_rate": round(self.abstained / n, 4),
            "evidence_cited_rate": (
                round(self.citing_span / self.with_spans, 4) if self.with_spans else None
            ),
            "model_answer_rate": round(self.from_model / n, 4),
            "fallback_rate": round(self.fallback / n, 4),
        }


def score_answers(
    answer: Callable[[AnswerCase], AnswerResult],
    cases: Iterable[AnswerCase],
    progress: Callable[[int], Any] | None = None,
    baseline: Callable[[AnswerCase], AnswerResult] | None = None,
) -> dict[str, Any]:
    product, extractive = _Tally(), _Tally()
    ttfts: list[float] = []
    tokens = 0
    generation_s = 0.0
    for case in cases:
        result = answer(case)
        product.add(case, result)
        if baseline is not None:
            extractive.add(case, baseline(case))
        if result.ttft_ms is not None and not result.refused:
            ttfts.append(result.ttft_ms)
        if result.completion_tokens > 1:
            tokens += result.completion_tokens - 1
            generation_s += result.generation_s
        if progress is not None:
            progress(1)
    figures: dict[str, Any] = {"n": product.n, **product.figures()}
    figures["p50_ttft_ms"] = round(statistics.median(ttfts), 1) if ttfts else 0.0
    figures["tokens_per_s"] = round(tokens / generation_s, 2) if generation_s > 0 else 0.0
    if baseline is not None:
        figures["extractive_baseline"] = extractive.figures()
    return figures


def baseline_sentences(
    question: str,
    passage: str,
    embed: Callable[[Sequence[str]], Any],
    split: Callable[[str], list[tuple[int, int]]],
) -> list[tuple[int, int]]:
    """The spans of the ``BASELINE_SENTENCES`` sentences of ``passage`` most similar to the
    question (embedding cosine), in passage order."""
    spans = split(passage)
    if not spans:
        return []
    vectors = embed([question, *(passage[a:b] for a, b in spans)])
    query, rest = vectors[0], vectors[1:]
    scores = rest @ query
    best = sorted(range(len(spans)), key=lambda i: -float(scores[i]))[:BASELINE_SENTENCES]
    return [spans[i] for i in sorted(best)]
