"""Feedback turned into training records: instruction examples and preference pairs.

The records are plain frozen dataclasses; the functions here are pure (no database, no
files), so the rules (what counts as approved, how duplicates and weak records are dropped,
which split a record lands in) are testable on their own.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# A record scrubber: every string field of a record scrubbed with one numbering
# (``safety.pii.scrub_example`` bound to the product's scrubber).
Scrub = Callable[[Mapping[str, Any]], dict[str, Any]]


class Outcome:
    """What the review and the feedback say of an answer."""

    APPROVED = "approved"  # a reviewer approved the answer as it was
    EDITED = "edited"  # a reviewer rewrote it, or accepted a user's correction word for word


@dataclass(frozen=True)
class FeedbackRecord:
    """One reviewed answer, as read from the database (already scrubbed there)."""

    outcome: str
    question: str
    context: str  # the cited passages, numbered as in the served prompt
    answer: str  # what the model said
    corrected: str | None  # the reviewer's edit or the user's correction
    source_ids: tuple[str, ...]  # provenance, e.g. ("review:3", "feedback:7", "message:12")


@dataclass(frozen=True)
class Example:
    """An instruction example: ``input`` is the cited context the answer was grounded in."""

    instruction: str
    input: str
    output: str
    source_ids: tuple[str, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["source_ids"] = list(self.source_ids)
        return record

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> Example:
        return cls(
            record["instruction"],
            record.get("input", ""),
            record["output"],
            tuple(record.get("source_ids", ())),
        )


@dataclass(frozen=True)
class PreferencePair:
    """A preference pair for DPO: the corrected answer is chosen over the model's own."""

    prompt: str
    input: str
    chosen: str
    rejected: str
    source_ids: tuple[str, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["source_ids"] = list(self.source_ids)
        return record


@dataclass(frozen=True)
class FilterRules:
    """Length and quality limits for examples (characters)."""

    min_instruction_chars: int = 8
    max_instruction_chars: int = 2000
    min_output_chars: int = 20
    max_output_chars: int = 4000
    max_input_chars: int = 8000
    near_duplicate_threshold: float = 0.8  # Jaccard similarity of word 3-gram shingles

    def __post_init__(self) -> None:
        if not 0 < self.min_output_chars <= self.max_output_chars:
            raise ValueError("need 0 < min_output_chars <= max_output_chars")
        if not 0 < self.min_instruction_chars <= self.max_instruction_chars:
            raise ValueError("need 0 < min_instruction_chars <= max_instruction_chars")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise ValueError("near_duplicate_threshold must be in (0, 1]")


def records_to_examples(
    records: Iterable[FeedbackRecord], scrub: Scrub
) -> tuple[list[Example], list[PreferencePair]]:
    """Examples (approved answers, edits, corrections) and pairs (where a correction exists).

    Every record goes through ``scrub`` before it becomes an example: the database text is
    scrubbed already, and this second pass guards the files against anything that was not.
    """
    examples: list[Example] = []
    pairs: list[PreferencePair] = []
    for record in records:
        target = record.answer if record.outcome == Outcome.APPROVED else record.corrected
        if not target:
            continue
        clean = scrub(
            {
                "instruction": record.question,
                "input": record.context,
                "output": target,
                "rejected": record.answer,
            }
        )
        examples.append(
            Example(clean["instruction"], clean["input"], clean["output"], record.source_ids)
        )
        if record.outcome != Outcome.APPROVED and _normal(clean["rejected"]) != _normal(
            clean["output"]
        ):
            pairs.append(
                PreferencePair(
                    clean["instruction"],
                    clean["input"],
                    clean["output"],
                    clean["rejected"],
                    record.source_ids,
                )
            )
    return examples, pairs


def _normal(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a text, for exact de-duplication."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def passes_filters(example: Example, rules: FilterRules) -> bool:
    """Length limits, and an output with real words that is not the question repeated."""
    instruction, output = example.instruction.strip(), example.output.strip()
    if not rules.min_instruction_chars <= len(instruction) <= rules.max_instruction_chars:
        return False
    if not rules.min_output_chars <= len(output) <= rules.max_output_chars:
        return False
    if len(example.input) > rules.max_input_chars:
        return False
    if _normal(output) == _normal(instruction):
        return False
    letters = sum(ch.isalpha() for ch in output)
    if letters < 0.5 * len(output.replace(" ", "")):
        return False  # mostly digits, symbols or placeholders
    words = _WORD.findall(output.lower())
    # A looping answer ("the the the ...") repeats a few words over and over.
    return len(words) >= 4 and len(set(words)) >= 0.3 * len(words)


_WORD = re.compile(r"\w+")
_PRIME = (1 << 31) - 1
_N_HASHES = 64
_BANDS = 16  # 16 bands of 4 rows: pairs above ~0.6 Jaccard become candidates
_rng = np.random.default_rng(20261123)
_A = _rng.integers(1, _PRIME, size=_N_HASHES, dtype=np.int64)
_B = _rng.integers(0, _PRIME, size=_N_HASHES, dtype=np.int64)


def shingles(text: str, n: int = 3) -> set[int]:
    """Hashed word n-grams of the normalised text (the whole text when it is shorter)."""
    words = _WORD.findall(_normal(text))
    grams = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    return {
        int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "little") % _PRIME
        for g in grams
    }


def minhash(shingle_set: set[int]) -> np.ndarray:
    """A 64-value MinHash signature (universal hashing modulo a Mersenne prime)."""
    if not shingle_set:
        return np.full(_N_HASHES, _PRIME, dtype=np.int64)
    values = np.fromiter(shingle_set, dtype=np.int64)
    return ((np.outer(_A, values) + _B[:, None]) % _PRIME).min(axis=1)


def deduplicate(examples: Sequence[Example], threshold: float) -> list[Example]:
    """First of each group of exact or near duplicates (question and answer together).

    Exact: the normalised texts are equal. Near: MinHash-LSH finds candidates, and the
    true Jaccard similarity of their shingles decides, so a band collision alone never
    drops a record.
    """
    kept: list[Example] = []
    kept_shingles: list[set[int]] = []
    seen_exact: set[str] = set()
    buckets: dict[tuple[int, bytes], list[int]] = {}
    rows = _N_HASHES // _BANDS
    for example in examples:
        key = _normal(example.instruction) + "\x00" + _normal(example.output)
        if key in seen_exact:
            continue
        grams = shingles(example.instruction + " " + example.output)
        signature = minhash(grams)
        bands = [(b, signature[b * rows : (b + 1) * rows].tobytes()) for b in range(_BANDS)]
        candidates = {i for band in bands for i in buckets.get(band, ())}
        if any(_jaccard(grams, kept_shingles[i]) >= threshold for i in candidates):
            continue
        seen_exact.add(key)
        for band in bands:
            buckets.setdefault(band, []).append(len(kept))
        kept.append(example)
        kept_shingles.append(grams)
    return kept


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def split_key(instruction: str) -> int:
    """A stable number in [0, 10000) from the normalised instruction."""
    digest = hashlib.sha256(_normal(instruction).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def split(
    examples: Sequence[Example], validation_fraction: float
) -> tuple[list[Example], list[Example]]:
    """Train and validation by a hash of the instruction: the same question always lands on
    the same side, whatever else is in the dataset. With two or more examples and none
    hashed into validation, the one with the smallest key goes there, so a gate has data.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError("validation_fraction must be in [0, 1)")
    cut = validation_fraction * 10_000
    train = [e for e in examples if split_key(e.instruction) >= cut]
    validation = [e for e in examples if split_key(e.instruction) < cut]
    if validation_fraction > 0 and not validation and len(train) >= 2:
        smallest = min(train, key=lambda e: split_key(e.instruction))
        train.remove(smallest)
        validation.append(smallest)
    return train, validation


def prepare(
    examples: Sequence[Example], rules: FilterRules
) -> tuple[list[Example], dict[str, int]]:
    """Filtered and de-duplicated examples, with counts of what was dropped and why."""
    filtered = [e for e in examples if passes_filters(e, rules)]
    unique = deduplicate(filtered, rules.near_duplicate_threshold)
    return unique, {
        "collected": len(examples),
        "dropped_by_filters": len(examples) - len(filtered),
        "dropped_as_duplicates": len(filtered) - len(unique),
        "kept": len(unique),
    }
