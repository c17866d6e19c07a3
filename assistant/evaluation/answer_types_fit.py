"""Fitting the answer types (``assistant retrieval fit-answer-types``): the labelled QA's
training documents, their answer passages found in the index in service, one type per kind
of question; written to ``retrieval/data/answer_types.npz`` with its provenance."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import InvalidInput
from assistant.evaluation.retrieval import answer_spans, read_jsonl
from retrieval.answer_types import LabelledAnswer, fit_answer_types, overlapping
from retrieval.embedding import Embedder
from retrieval.store import IndexVersion
from training.held_out import is_held_out


def labelled_answers(
    qa_path: Path, kind_field: str, version: IndexVersion, embedder: Embedder
) -> tuple[list[LabelledAnswer], dict[str, int]]:
    """The QA file's questions about training documents (held-out ones never), with the
    passages of the version that overlap their answer spans."""
    searcher = version.searcher
    first_chunk = {searcher.chunks[int(a)].doc_id: d for d, a in enumerate(searcher.doc_start)}
    kept: list[tuple[str, str, int, list[int]]] = []
    counts = {"read": 0, "held_out": 0, "no_passage": 0}
    for record in read_jsonl(qa_path):
        counts["read"] += 1
        doc_id, kind, question = (
            record.get("doc_id"),
            record.get(kind_field),
            record.get("question"),
        )
        if not (isinstance(doc_id, str) and isinstance(kind, str) and isinstance(question, str)):
            raise InvalidInput(
                f"{qa_path}: every record needs string 'question', 'doc_id' and '{kind_field}'"
            )
        if is_held_out(doc_id):
            counts["held_out"] += 1
            continue
        spans = answer_spans(record)
        doc = first_chunk.get(doc_id)
        if doc is None or not spans:
            counts["no_passage"] += 1
            continue
        first, end = int(searcher.doc_start[doc]), int(searcher.doc_end[doc])
        chunks = searcher.chunks[first:end]
        hit = overlapping([c.start for c in chunks], [c.end for c in chunks], spans)
        if not hit:
            counts["no_passage"] += 1
            continue
        kept.append((kind, question, doc, [first + i for i in hit]))
    questions = embedder.encode([question for _, question, _, _ in kept])
    titles = version.title_vectors
    labelled = [
        LabelledAnswer(
            kind,
            questions[i],
            None if titles is None else np.asarray(titles[doc], dtype=np.float32),
            np.asarray(version.vectors[passages], dtype=np.float32),
        )
        for i, (kind, _, doc, passages) in enumerate(kept)
    ]
    counts["used"] = len(labelled)
    return labelled, counts


def fit_and_write(
    qa_path: Path,
    kind_field: str,
    collection: str,
    version: IndexVersion,
    embedder: Embedder,
    path: Path,
) -> dict[str, Any]:
    labelled, counts = labelled_answers(qa_path, kind_field, version, embedder)
    if not labelled:
        raise InvalidInput(f"{qa_path}: no labelled answer found in the index in service")
    provenance = {
        "qa_file": qa_path.name,
        "qa_sha256": hashlib.sha256(qa_path.read_bytes()).hexdigest()[:16],
        "kind_field": kind_field,
        "index_version": version.name,
        "embedding_model": Path(version.manifest.embedding_model).parent.name,
        "split": "training documents only: md5(doc_id) % 5 != 0",
        "counts": counts,
    }
    types = fit_answer_types(labelled, collection, provenance=provenance)
    types.save(path)
    return {"kinds": len(types.kinds), "path": str(path), **provenance}
