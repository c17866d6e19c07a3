"""The bootstrap dataset: the corpus QA turned into examples in the exact served layout.

Each corpus question is answered the way the product answers it (search, evidence
selection, the numbered evidence block), and its target is what a grounded answer should
say given that evidence:

- the evidence sentences that lie inside the gold answer (MedQuAD) or the lawyer-labelled
  clauses (CUAD), copied in document order, each followed by its evidence number;
- ``NOT_IN_SOURCES`` for a question whose evidence cannot answer it: a subject that does not
  exist (an invented disease, a contract between invented companies), or a question put
  beside the evidence of another, unrelated question.

A question whose gold answer the evidence misses, while the evidence is about the same
page or topic, gives no example: neither copying nor declining would be the right target.

Documents are split by a hash of their id: one part in five (``HELD_OUT_SHARE``) is never
trained on; evaluation reports its figures on the questions about those documents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.asking.prompts import render_context
from assistant.learning.invented_questions import invented_questions, noisy
from retrieval.evidence import Evidence, EvidenceConfig, content_words
from training.examples import Example
from training.held_out import HELD_OUT_SHARE, is_held_out
from training.prompt_format import NOT_IN_SOURCES, SYSTEM_PROMPT

if TYPE_CHECKING:
    from assistant.asking.config import AnswerSettings
    from assistant.learning.datasets import DatasetInfo
    from assistant.services import Services

logger = logging.getLogger(__name__)

MAX_TARGET_WORDS = 130  # a grounded answer copies at most this much (whole sentences)
MIN_OVERLAP = 0.5  # a sentence is part of the answer when half of it lies inside a gold span


@dataclass(frozen=True)
class CorpusQuestion:
    """A question of the corpus QA with where its answer lies in its document."""

    question: str
    doc_id: str
    spans: tuple[tuple[int, int], ...]
    domain: str  # medical | legal
    category: str = ""


@dataclass(frozen=True)
class BootstrapConfig:
    medical_qa: Path
    legal_qa: Path
    seed: int = 0
    max_medical: int = 1500
    max_legal: int = 700
    invented_share: float = 0.1  # invented-subject questions, of the answerable count
    mismatched_share: float = 0.08  # questions beside another question's evidence
    earlier_question_share: float = 0.15  # examples with an earlier question of the conversation
    noisy_question_share: float = 0.2  # questions lower-cased, without "?", with a typo

    def to_json(self) -> dict[str, Any]:
        return {
            "medical_qa": str(self.medical_qa),
            "legal_qa": str(self.legal_qa),
            "seed": self.seed,
            "max_medical": self.max_medical,
            "max_legal": self.max_legal,
            "invented_share": self.invented_share,
            "mismatched_share": self.mismatched_share,
            "earlier_question_share": self.earlier_question_share,
            "noisy_question_share": self.noisy_question_share,
        }


def read_questions(path: Path, domain: str) -> list[CorpusQuestion]:
    """The QA file's questions with their gold spans (MedQuAD answer or CUAD evidence)."""
    out = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            spans: list[tuple[int, int]] = []
            if isinstance(record.get("answer_char_start"), int):
                spans.append((record["answer_char_start"], record["answer_char_end"]))
            for span in record.get("evidence_spans") or []:
                spans.append((int(span["start"]), int(span["end"])))
            if spans:
                out.append(
                    CorpusQuestion(
                        record["question"],
                        record["doc_id"],
                        tuple(spans),
                        domain,
                        str(record.get("category", "")),
                    )
                )
    return out


def grounded_target(question: CorpusQuestion, evidence: Sequence[Evidence]) -> str | None:
    """The evidence sentences inside the gold spans, each with its number; None if none."""
    picked: list[tuple[int, int, str, int]] = []  # (doc order, -, text, n)
    for item in evidence:
        if item.hit.chunk.doc_id != question.doc_id:
            continue
        for sentence in item.sentences:
            if _answers(sentence.start, sentence.end, question.spans):
                picked.append((sentence.start, sentence.end, sentence.text, item.n))
    if not picked:
        return None
    picked.sort()
    merged: list[tuple[int, int, str, int]] = []
    for start, end, text, n in picked:
        if merged and merged[-1][0] == start:  # one sentence under two numbers
            continue
        if merged and _continues(merged[-1], start, n):  # the next piece of a long sentence
            first, _, previous, _ = merged[-1]
            merged[-1] = (first, end, f"{previous} {text.strip()}", n)
        else:
            merged.append((start, end, text.strip(), n))
    parts: list[str] = []
    words = 0
    for _, _, text, n in merged:
        if words and words + len(text.split()) > MAX_TARGET_WORDS:
            break
        parts.append(f"{text} [{n}]")
        words += len(text.split())
    return " ".join(parts)


def _continues(previous: tuple[int, int, str, int], start: int, n: int) -> bool:
    """Whether a sentence piece goes on from ``previous`` (same source, adjacent, and the
    previous piece does not end a sentence): the two are cited once, as one sentence."""
    _, end, text, number = previous
    return number == n and start - end <= 1 and not text.rstrip().endswith((".", "!", "?"))


def _answers(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether a sentence is part of the gold answer: mostly inside a gold span (a long
    MedQuAD answer), or holding a whole gold span (a CUAD party name, a date)."""
    inside = sum(max(0, min(end, b) - max(start, a)) for a, b in spans)
    if inside / max(1, end - start) >= MIN_OVERLAP:
        return True
    return any(start <= a and b <= end for a, b in spans)


def mentions_subject(question: str, evidence: Sequence[Evidence]) -> bool:
    """Whether the evidence shares a distinctive content word with the question."""
    asked = {w for w in content_words(question) if len(w) > 3}
    seen: set[str] = set()
    for item in evidence:
        seen.update(content_words(item.text + " " + item.hit.chunk.title))
    return bool(asked & seen)


# ---- questions about subjects that do not exist ----------------------------------------------
# ---- the build ---------------------------------------------------------------------------------
EvidenceFor = Callable[[str], list[Evidence]]


@dataclass(frozen=True)
class BootstrapResult:
    train: list[Example]
    validation: list[Example]
    stats: dict[str, int]


def build_examples(
    config: BootstrapConfig,
    evidence_for: EvidenceFor,
    progress: Callable[[int], Any] | None = None,
) -> BootstrapResult:
    """Examples from the training part of the corpus QA; the validation split is drawn from
    the same part (by document), so the held-out documents stay untouched."""
    rng = random.Random(config.seed)
    stats = {
        "answerable": 0,
        "no_gold_in_evidence": 0,
        "invented": 0,
        "mismatched": 0,
        "held_out_skipped": 0,
    }
    questions = _sampled(config, rng, stats)
    by_doc: dict[str, list[str]] = {}
    for q in questions:
        by_doc.setdefault(q.doc_id, []).append(q.question)
    examples: list[tuple[str, Example]] = []  # (doc id for the split, example)
    answered: list[tuple[CorpusQuestion, list[Evidence]]] = []
    for q in questions:
        evidence = evidence_for(q.question)
        if progress is not None:
            progress(1)
        target = grounded_target(q, evidence)
        if target is None:
            stats["no_gold_in_evidence"] += 1
            continue
        earlier = _earlier(q, by_doc, rng, config.earlier_question_share)
        shown = noisy(q.question, rng) if rng.random() < config.noisy_question_share else q.question
        examples.append(
            (q.doc_id, Example(shown, render_context(evidence, earlier), target, (q.doc_id,)))
        )
        answered.append((q, evidence))
        stats["answerable"] += 1
    for question, _domain in invented_questions(
        rng, round(config.invented_share * stats["answerable"])
    ):
        evidence = evidence_for(question)
        if progress is not None:
            progress(1)
        if evidence:
            examples.append(
                (
                    f"invented:{question}",
                    Example(question, render_context(evidence), NOT_IN_SOURCES),
                )
            )
            stats["invented"] += 1
    for q, evidence in _mismatches(answered, rng, config.mismatched_share):
        examples.append((q.doc_id, Example(q.question, render_context(evidence), NOT_IN_SOURCES)))
        stats["mismatched"] += 1
    train, validation = _split(examples)
    rng.shuffle(train)
    return BootstrapResult(train, validation, stats)


def _sampled(
    config: BootstrapConfig, rng: random.Random, stats: dict[str, int]
) -> list[CorpusQuestion]:
    picked: list[CorpusQuestion] = []
    for path, domain, limit in (
        (config.medical_qa, "medical", config.max_medical),
        (config.legal_qa, "legal", config.max_legal),
    ):
        pool = [q for q in read_questions(path, domain) if not is_held_out(q.doc_id)]
        stats["held_out_skipped"] += sum(
            1 for q in read_questions(path, domain) if is_held_out(q.doc_id)
        )
        rng.shuffle(pool)
        picked.extend(pool[:limit])
    return picked


def _earlier(
    q: CorpusQuestion, by_doc: dict[str, list[str]], rng: random.Random, share: float
) -> list[str]:
    if rng.random() >= share:
        return []
    siblings = [other for other in by_doc.get(q.doc_id, []) if other != q.question]
    return [rng.choice(siblings)] if siblings else []


def _mismatches(
    answered: Sequence[tuple[CorpusQuestion, list[Evidence]]], rng: random.Random, share: float
) -> Iterator[tuple[CorpusQuestion, list[Evidence]]]:
    """Questions beside the evidence of another question that shares no subject word."""
    wanted = round(share * len(answered))
    tries = 0
    made = 0
    while made < wanted and tries < wanted * 20 and len(answered) > 1:
        tries += 1
        q, _ = rng.choice(answered)
        other, evidence = rng.choice(answered)
        if other.doc_id == q.doc_id or other.domain != q.domain:
            continue
        if mentions_subject(_subject_part(q.question), evidence):
            continue
        made += 1
        yield q, evidence


def _subject_part(question: str) -> str:
    """The part of a question that names its subject (CUAD: the contract and parties)."""
    head, sep, _ = question.partition(":")
    return head if sep and question.lower().startswith("in the ") else question


def _split(examples: Iterable[tuple[str, Example]]) -> tuple[list[Example], list[Example]]:
    """One training document in twenty (by hash) goes to validation."""
    train: list[Example] = []
    validation: list[Example] = []
    for key, example in examples:
        bucket = int(hashlib.md5(f"val:{key}".encode()).hexdigest(), 16) % 20
        (validation if bucket == 0 else train).append(example)
    return train, validation


# ---- the command: build, train with the product's own loop, publish ---------------------------
def source_manifest(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Each input file's name, size and SHA-256 (what the dataset was built from)."""
    out = []
    for path in paths:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out.append({"file": path.name, "bytes": path.stat().st_size, "sha256": digest})
    return out


def evidence_config(answers: AnswerSettings) -> EvidenceConfig:
    """The evidence selection the product serves with (and the bootstrap data is built with)."""
    return EvidenceConfig(
        budget_tokens=answers.evidence_budget_tokens,
        max_sources=answers.evidence_sources,
        aspect_share=answers.evidence_aspect_share,
    )


def build_dataset(
    services: Services,
    config: BootstrapConfig,
    count_tokens: Callable[[str], int],
    progress: Callable[[int], Any] | None = None,
) -> DatasetInfo:
    """Build the bootstrap examples and record them as the next dataset version."""
    from assistant.learning.datasets import latest_dataset, next_dataset_version, record_dataset
    from assistant.learning.folders import datasets_dir
    from retrieval.evidence import select_evidence
    from training.datasets import write_dataset

    settings = services.settings
    chosen = evidence_config(settings.answers)

    def evidence_for(question: str) -> list[Evidence]:
        hits = services.index.search(question, settings.answers.evidence_sources)
        return select_evidence(question, hits, services.embedder, count_tokens, chosen)

    result = build_examples(config, evidence_for, progress)
    version = next_dataset_version(services, latest_dataset(services.db))
    provenance = {
        "kind": "bootstrap",
        "built_from": source_manifest([config.medical_qa, config.legal_qa]),
        "config": config.to_json(),
        "evidence": {
            "budget_tokens": chosen.budget_tokens,
            "max_sources": chosen.max_sources,
            "aspect_share": chosen.aspect_share,
        },
        "held_out": f"documents with md5(doc_id) % {HELD_OUT_SHARE} == 0 are never used",
        "stats": result.stats,
        "sources": [],
    }
    files = write_dataset(
        datasets_dir(services),
        version,
        result.train,
        result.validation,
        [],
        provenance,
        SYSTEM_PROMPT,
    )
    logger.info("bootstrap dataset v%d: %s", version, result.stats)
    services.artifacts.publish_dataset(files.path, files.version, files.content_hash)
    return record_dataset(services.db, files, provenance)
