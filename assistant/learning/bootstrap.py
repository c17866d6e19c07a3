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
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.asking.prompts import render_context
from retrieval.evidence import Evidence, EvidenceConfig, content_words
from training.examples import Example
from training.prompt_format import NOT_IN_SOURCES, SYSTEM_PROMPT

if TYPE_CHECKING:
    from assistant.learning.datasets import DatasetInfo
    from assistant.services import Services
    from assistant.settings import AnswerSettings

logger = logging.getLogger(__name__)

HELD_OUT_SHARE = 5  # one document in five is held out
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


def is_held_out(doc_id: str) -> bool:
    """Whether ``doc_id`` belongs to the part of the corpus never trained on."""
    return int(hashlib.md5(doc_id.encode()).hexdigest(), 16) % HELD_OUT_SHARE == 0


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
_SYLLABLES = (
    "bra tel vo ric man dor sel ka fen lo tra mi zo ver nak pel quin dar sto lum gra hev "
    "cor ben tis ol wy rax jun fal mor pen"
).split()
_MEDICAL_FRAMES = (
    "What is (are) {x} ?",
    "What are the symptoms of {x} ?",
    "What are the treatments for {x} ?",
    "What causes {x} ?",
    "Is {x} inherited ?",
    "How many people are affected by {x} ?",
    "What is the outlook for {x} ?",
    "How to diagnose {x} ?",
    "my doctor thinks i might have {x}, is it serious?",
    "what is the usual dose of {x} for adults",
    "Can {x} be prevented?",
)
_MEDICAL_KINDS = ("syndrome", "disease", "", "deficiency", "dystrophy", "")
_DRUG_ENDINGS = ("zumab", "tinib", "vastatin", "prazole", "cillin", "dronate")
_LEGAL_FRAMES = (
    "In the {title} between {a} and {b}: What is the initial franchise fee?",
    "In the {title} between {a} and {b}: Which state's law governs the contract?",
    "In the {title} between {a} and {b}: What is the notice period to terminate renewal?",
    "In the {title} between {a} and {b}: What is the renewal term after the initial term expires?",
    "In the {title} between {a} and {b}: Is there a cap on liability?",
    "In the {title} between {a} and {b}: Who are the parties that signed the contract?",
    "What does the {title} between {a} and {b} say about exclusivity?",
)
_LEGAL_TITLES = (
    "Franchise Agreement",
    "Supply Agreement",
    "Software License Agreement",
    "Joint Venture Agreement",
    "Distribution Agreement",
    "Consulting Services Agreement",
)
_COMPANY_ENDINGS = ("Holdings, Inc.", "Technologies LLC", "Group Ltd.", "Corporation", "S.A.")


def _invented_word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(syllables)).capitalize()


def invented_questions(rng: random.Random, n: int) -> list[tuple[str, str]]:
    """``n`` (question, domain) about invented diseases, drugs and contracts."""
    out: list[tuple[str, str]] = []
    while len(out) < n:
        roll = rng.random()
        if roll < 0.45:
            name = f"{_invented_word(rng, 2)}-{_invented_word(rng, 2)} {rng.choice(_MEDICAL_KINDS)}"
            out.append((rng.choice(_MEDICAL_FRAMES).format(x=name.strip()), "medical"))
        elif roll < 0.6:
            drug = _invented_word(rng, 2).lower() + rng.choice(_DRUG_ENDINGS)
            out.append((rng.choice(_MEDICAL_FRAMES).format(x=drug), "medical"))
        else:
            a = f"{_invented_word(rng, 2)} {rng.choice(_COMPANY_ENDINGS)}"
            b = f"{_invented_word(rng, 3)} {rng.choice(_COMPANY_ENDINGS)}"
            frame = rng.choice(_LEGAL_FRAMES)
            out.append((frame.format(title=rng.choice(_LEGAL_TITLES), a=a, b=b), "legal"))
    return out


def noisy(question: str, rng: random.Random) -> str:
    """The question as people type it: lower case, no question mark, one slip of a key."""
    text = question.lower().rstrip(" ?")
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) > 5 and w.isalpha()]
    if candidates and rng.random() < 0.6:
        i = rng.choice(candidates)
        w = words[i]
        k = rng.randrange(1, len(w) - 1)
        words[i] = w[:k] + w[k + 1] + w[k] + w[k + 2 :]  # two letters swapped
    return re.sub(r"\s+", " ", " ".join(words))


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
    return record_dataset(services.db, files, provenance)


def publish(
    services: Services, result: dict[str, Any], job_id: int, dataset: DatasetInfo, out_dir: Path
) -> Path:
    """Copy the run's adapter and a manifest of what made it into ``out_dir`` (replaced whole)."""
    import shutil
    import tempfile

    from assistant.learning.folders import runs_dir

    run = runs_dir(services) / f"job-{job_id}"
    base = services.settings.llm.model_path
    manifest = {
        "name": out_dir.name,
        "base_model": {
            "file": base.name,
            "bytes": base.stat().st_size,
            "sha256": hashlib.sha256(base.read_bytes()).hexdigest(),
        },
        "dataset": {
            "content_hash": dataset.content_hash,
            "n_train": dataset.n_train,
            "n_validation": dataset.n_validation,
            "provenance": dataset.provenance,
        },
        "training_config": json.loads((run / "config.json").read_text()),
        "run": {
            k: result.get(k)
            for k in (
                "steps",
                "best_val_loss",
                "final_train_loss",
                "train_seconds",
                "steps_per_s",
                "stopped_early",
            )
        },
        "gate": {"promoted": result.get("promoted"), "reasons": result.get("reasons")},
        "comparison": result.get("comparison"),
        "reproduce": "scripts/train-grounded-model.sh",
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    shutil.copytree(run / "adapter", staging / "adapter")
    half_precision(staging / "adapter" / "adapter_model.safetensors")
    (staging / "adapter" / "README.md").unlink(missing_ok=True)  # PEFT's empty model card
    config_path = staging / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base.name  # not the training machine's cache path
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copy(run / "loss_curve.svg", staging / "loss_curve.svg")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


def half_precision(path: Path) -> None:
    """The adapter's weights stored as float16: half the size in the repository, and the
    merge into the base (in float32) differs by less than the base's own quantization."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(path))
    save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(path))


# How the default grounded model is trained (the run's own config is kept in its manifest).
# LoRA on every projection: the model must learn to copy and to decline, not only to reword.
GROUNDED_TRAINING: dict[str, Any] = {
    "method": "lora",
    "r": 16,
    "alpha": 32,
    "dropout": 0.05,
    "target_modules": [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ],
    "epochs": 1,
    "learning_rate": 3e-4,
    "warmup_steps": 10,
    "max_seq_len": 640,
    "batch_size": 4,
    "grad_accumulation": 2,
    "eval_every": 60,
    "early_stopping_patience": 3,
    "precision": "auto",
}


def token_counter(model_path: Path) -> Callable[[str], int]:
    """Tokens of a text as the served model counts them (its vocabulary only, no weights)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
