"""Answer types: what the passage that answers a kind of question looks like.

Inside a long contract, the passage a question wants is often not the one most similar to
the question: "Is consent or notice required if the contract is assigned?" is answered by
"Neither party may transfer this Agreement without the prior written approval of the
other", which shares few words with it, while the preamble that names the parties shares
many. The labelled QA knows the answer for many questions of each kind (CUAD's 41 clause
categories), so each kind is summed up by two unit vectors in the embedding space:

- ``asks``: the mean of its questions' vectors without their document's title (the part of
  the question that says what is asked, as ``Searcher`` computes it);
- ``answers``: the mean of the vectors of the passages that hold the labelled answers.

A new question is matched to the kinds by ``asks`` (a softmax over cosines, so a question
worded in a new way still finds the kinds nearest in meaning), and the passages of its
document are scored by their similarity to the matching kinds' ``answers``. The search
blends that score into a passage's score within its document (``answer_type_weight``).

Fitted by ``assistant retrieval fit-answer-types`` from the dev QA's training documents only
(``md5(doc_id) % 5 != 0``), so the held-out documents measure it; the fitted file ships in
``retrieval/data/`` with its provenance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SHIPPED_ANSWER_TYPES = Path(__file__).parent / "data" / "answer_types.npz"
TEMPERATURE = 0.05  # softmax temperature over cosines: the best kinds dominate


@dataclass(frozen=True)
class LabelledAnswer:
    """One labelled question: its vector, its document's title vector and the vectors of
    the passages that hold its answer."""

    kind: str
    question: np.ndarray
    title: np.ndarray | None
    passages: np.ndarray  # (n, dimension), n >= 1


@dataclass(frozen=True)
class AnswerTypes:
    kinds: tuple[str, ...]
    asks: np.ndarray  # (kinds, dimension), unit rows
    answers: np.ndarray  # (kinds, dimension), unit rows
    collection: str  # the documents the types are about ("legal")
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def dimension(self) -> int:
        return int(self.asks.shape[1])

    def expected_answers(self, asked: np.ndarray) -> np.ndarray:
        """Per row of ``asked`` (unit question vectors without the title), the unit vector
        of the answer it expects: the kinds' ``answers`` weighted by how well each kind's
        ``asks`` matches."""
        cosines = np.atleast_2d(asked) @ self.asks.T
        weights = np.exp((cosines - cosines.max(axis=1, keepdims=True)) / TEMPERATURE)
        weights /= weights.sum(axis=1, keepdims=True)
        expected = weights @ self.answers
        return _unit(expected)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"kinds": list(self.kinds), "collection": self.collection, **self.provenance}
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                asks=self.asks.astype(np.float16),
                answers=self.answers.astype(np.float16),
                meta=np.array(json.dumps(meta)),
            )

    @classmethod
    def load(cls, path: Path) -> AnswerTypes:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            asks = _unit(data["asks"].astype(np.float32))
            answers = _unit(data["answers"].astype(np.float32))
        kinds = tuple(meta.pop("kinds"))
        collection = meta.pop("collection")
        if asks.shape != answers.shape or asks.shape[0] != len(kinds):
            raise ValueError(f"{path}: inconsistent answer types")
        return cls(kinds, asks, answers, collection, meta)


def without_title(question: np.ndarray, title: np.ndarray | None) -> np.ndarray:
    """The question's unit vector without its component along the title's (what it asks
    about its subject rather than which subject)."""
    if title is None:
        return _unit(question)
    return _unit(question - float(title @ question) * title)


def fit_answer_types(
    labelled: Iterable[LabelledAnswer],
    collection: str,
    min_questions: int = 3,
    provenance: dict[str, Any] | None = None,
) -> AnswerTypes:
    """One answer type per kind with at least ``min_questions`` labelled questions."""
    asks: dict[str, list[np.ndarray]] = {}
    answers: dict[str, list[np.ndarray]] = {}
    for item in labelled:
        asks.setdefault(item.kind, []).append(without_title(item.question, item.title))
        answers.setdefault(item.kind, []).append(_unit(item.passages.mean(axis=0)))
    kinds = tuple(sorted(k for k, rows in asks.items() if len(rows) >= min_questions))
    if not kinds:
        raise ValueError("no kind has enough labelled questions")
    return AnswerTypes(
        kinds,
        _unit(np.stack([np.mean(asks[k], axis=0) for k in kinds])),
        _unit(np.stack([np.mean(answers[k], axis=0) for k in kinds])),
        collection,
        {"questions": {k: len(asks[k]) for k in kinds}, **(provenance or {})},
    )


def overlapping(
    starts: Sequence[int], ends: Sequence[int], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """Positions of the passages ``[starts[i], ends[i])`` that overlap one of ``spans``."""
    return [
        i
        for i, (a, z) in enumerate(zip(starts, ends, strict=True))
        if any(a < end and start < z for start, end in spans)
    ]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)
