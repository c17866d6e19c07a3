"""Hybrid ranking by document: the documents first, then the passages inside each of them.

The two steps are described in ``retrieval.search``; this module is their arithmetic, over
arrays that the ``Searcher`` (a ``SearchIndex``) holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from retrieval.answer_types import AnswerTypes, without_title
from retrieval.config import SearchParams
from retrieval.types import Chunk


class SearchIndex(Protocol):
    """What the two steps read from one index version (``Searcher`` provides it)."""

    chunks: list[Chunk]
    vectors: np.ndarray
    title_vectors: np.ndarray | None  # one per document, in document order
    doc_start: np.ndarray  # each document's first chunk
    doc_end: np.ndarray  # one past each document's last chunk
    chunk_doc: np.ndarray  # each chunk's document

    def cosines(self, ids: np.ndarray, query_vector: np.ndarray) -> np.ndarray: ...

    def title_match(self, words: set[str], docs: np.ndarray) -> np.ndarray: ...

    def intent_weights(self, docs: np.ndarray, words: list[str], weight: float) -> np.ndarray: ...

    def local_bm25(self, terms: list[int], docs: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class HybridQuery:
    """The question as the two steps use it."""

    words: list[str]  # stemmed, as ``Searcher.query_words`` reads them
    terms: list[int]  # the BM25 vocabulary ids of those words the index knows
    vector: np.ndarray


@dataclass(frozen=True)
class RankedDocuments:
    """Step 1: the documents to look inside, best first, and their scores."""

    docs: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class DocumentPassages:
    """Every passage of some documents, document by document."""

    docs: np.ndarray  # the documents
    ids: np.ndarray  # their chunk ids, the first document's first
    group: np.ndarray  # per passage, its document's position in ``docs``
    bounds: np.ndarray  # per document, the position of its first passage in ``ids``

    @classmethod
    def of(cls, index: SearchIndex, docs: np.ndarray) -> DocumentPassages:
        starts, ends = index.doc_start[docs], index.doc_end[docs]
        sizes = ends - starts
        ids = np.concatenate([np.arange(a, z) for a, z in zip(starts, ends, strict=True)])
        group = np.repeat(np.arange(len(docs)), sizes)
        bounds = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        return cls(docs, ids, group, bounds)

    def scaled(self, values: np.ndarray) -> np.ndarray:
        """``values`` (one per passage) scaled to [0, 1] within each document."""
        return min_max_within(values, self.bounds, self.group)

    def best(self, values: np.ndarray) -> np.ndarray:
        """Per passage, the largest of ``values`` in its document."""
        return np.maximum.reduceat(values, self.bounds)[self.group]


def fuse_by_document(
    index: SearchIndex,
    query: HybridQuery,
    proposed: list[int],
    bm25_scores: np.ndarray | None,
    params: SearchParams,
    answer_types: AnswerTypes | None = None,
) -> list[tuple[int, float]]:
    """Passages of the best of the ``proposed`` passages' documents, best first, with scores."""
    candidates = np.unique(np.array(proposed, dtype=np.int64))
    if not len(candidates):
        return []
    ranked = rank_documents(index, query, candidates, bm25_scores, params)
    passages = DocumentPassages.of(index, ranked.docs)
    within = score_within(index, query, passages, params, answer_types)
    score = ranked.scores[passages.group] + params.passage_weight * within
    return best_per_document(passages, score, params.max_per_doc)


def rank_documents(
    index: SearchIndex,
    query: HybridQuery,
    candidates: np.ndarray,
    bm25_scores: np.ndarray | None,
    params: SearchParams,
) -> RankedDocuments:
    """Step 1: the candidates' documents by their best cosine, their best BM25 score and
    how much of their title the question names; the best ``rerank_docs`` of them."""
    cosines = index.cosines(candidates, query.vector)
    keyword = bm25_scores[candidates] if bm25_scores is not None else np.zeros(len(candidates))
    docs, slot = np.unique(index.chunk_doc[candidates], return_inverse=True)
    doc_cosine = np.full(len(docs), -1.0, dtype=np.float32)
    doc_keyword = np.zeros(len(docs), dtype=np.float32)
    np.maximum.at(doc_cosine, slot, cosines)
    np.maximum.at(doc_keyword, slot, keyword)
    a = params.doc_dense_weight
    doc_score = a * min_max(doc_cosine) + (1 - a) * by_max(doc_keyword)
    if params.title_weight:
        doc_score = doc_score + params.title_weight * index.title_match(set(query.words), docs)
    order = np.lexsort((docs, -doc_score))[: params.rerank_docs]
    return RankedDocuments(docs[order], doc_score[order])


def score_within(
    index: SearchIndex,
    query: HybridQuery,
    passages: DocumentPassages,
    params: SearchParams,
    answer_types: AnswerTypes | None,
) -> np.ndarray:
    """Step 2: each passage's score inside its document: similarity and BM25 with the
    document's own IDF, then the answer types where they apply."""
    dense = passage_dense(index, query, passages, params.intent_weight)
    local = index.local_bm25(query.terms, passages.docs)[passages.ids]
    best = passages.best(local)
    keyword = np.where(best > 0, local / np.maximum(best, 1e-9), 0.0)
    b = params.passage_dense_weight
    within = b * dense + (1 - b) * keyword
    if answer_types is not None and params.answer_type_weight:
        within = with_answer_types(
            index, query, passages, within, answer_types, params.answer_type_weight
        )
    return within


def best_per_document(
    passages: DocumentPassages, score: np.ndarray, max_per_doc: int
) -> list[tuple[int, float]]:
    """(chunk id, score), best first, at most ``max_per_doc`` passages of one document, so
    that a long list still shows several documents."""
    ids, group = passages.ids, passages.group
    by_group = np.lexsort((ids, -score, group))
    rank_in_doc = np.arange(len(ids)) - passages.bounds[group[by_group]]
    kept = by_group[rank_in_doc < max_per_doc]
    kept = kept[np.lexsort((ids[kept], -score[kept]))]
    return [(int(ids[j]), float(score[j])) for j in kept]


def passage_dense(
    index: SearchIndex, query: HybridQuery, passages: DocumentPassages, intent_weight: float
) -> np.ndarray:
    """Each passage's similarity to the question, scaled to [0, 1] within its document.

    Every passage of a page is about the page's subject, so the part of the question
    that names the subject ("... by Beckwith-Wiedemann syndrome") cannot tell them
    apart; what the question asks about it ("how many people are affected") can. The
    question's vector without its component along the document's title vector stands
    for that part, and its similarity is blended in (``intent_weights``).
    """
    vectors = np.asarray(index.vectors[passages.ids], dtype=np.float32)
    plain = passages.scaled(vectors @ query.vector)
    weights = index.intent_weights(passages.docs, query.words, intent_weight)
    if index.title_vectors is None or not weights.any():
        return plain
    titles = np.asarray(index.title_vectors[passages.docs], dtype=np.float32)
    asked = query.vector[None, :] - (titles @ query.vector)[:, None] * titles
    asked /= np.maximum(np.linalg.norm(asked, axis=1, keepdims=True), 1e-9)
    intent = passages.scaled(np.einsum("ij,ij->i", vectors, asked[passages.group]))
    w = weights[passages.group]
    return passages.scaled((1 - w) * plain + w * intent)


def with_answer_types(
    index: SearchIndex,
    query: HybridQuery,
    passages: DocumentPassages,
    within: np.ndarray,
    types: AnswerTypes,
    weight: float,
) -> np.ndarray:
    """``within`` (each passage's score inside its document) blended, for the documents
    of the types' collection, with the passage's similarity to the answer the question
    expects (``AnswerTypes``); both scaled to [0, 1] within the document."""
    if types.dimension != query.vector.shape[0]:
        return within  # fitted with another embedding model: they do not apply
    first_chunks = index.doc_start[passages.docs].tolist()
    applies = np.array([index.chunks[i].collection == types.collection for i in first_chunks])
    if not applies.any():
        return within
    titles = index.title_vectors
    asked = np.stack(
        [
            without_title(query.vector, None if titles is None else np.asarray(titles[d]))
            for d in passages.docs.tolist()
        ]
    )
    expected = types.expected_answers(asked)
    vectors = np.asarray(index.vectors[passages.ids], dtype=np.float32)
    likeness = np.einsum("ij,ij->i", vectors, expected[passages.group])
    blended = (1 - weight) * passages.scaled(within)
    blended += weight * passages.scaled(likeness)
    # Scaled to the document's own best, so the documents keep their order: the types
    # choose among a contract's passages, not between contracts.
    best = passages.best(within)
    blended *= best / np.maximum(passages.best(blended), 1e-9)
    return np.where(applies[passages.group], blended, within)


# ---- scaling ---------------------------------------------------------------------------------
# The ignores: numpy's stubs have typed such array arithmetic as Any.
def min_max(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] (all 1 when they are all equal)."""
    spread = float(values.max() - values.min()) if len(values) else 0.0
    if spread <= 1e-9:
        return np.ones_like(values)
    return (values - values.min()) / spread


def min_max_within(values: np.ndarray, bounds: np.ndarray, group: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] within each group of consecutive items (1 where all equal).

    ``bounds`` are the groups' first positions and ``group`` each item's group.
    """
    low = np.minimum.reduceat(values, bounds)[group]
    spread = np.maximum.reduceat(values, bounds)[group] - low
    return np.where(spread > 1e-9, (values - low) / np.maximum(spread, 1e-9), 1.0)


def by_max(values: np.ndarray) -> np.ndarray:
    """``values`` divided by the largest (all 0 when none is positive)."""
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)
