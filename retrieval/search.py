"""Hybrid search over one index version: FAISS vectors and BM25 keywords, fused by rank."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.types import Chunk, Hit

logger = logging.getLogger(__name__)

_stemmer: Any = None

SEARCH_MODES = ("hybrid", "dense", "bm25")


def bm25_tokenize(texts: Sequence[str]) -> Any:
    """Lower-cased, English-stemmed word tokens without stop words (bm25s's tokenizer)."""
    import bm25s

    return bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_english_stemmer(), show_progress=False
    )


def _english_stemmer() -> Any:
    global _stemmer  # a pure function of the language; building it once is only a cache
    if _stemmer is None:
        import Stemmer

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer


def rrf_fuse(
    rankings: Sequence[tuple[Sequence[int], float]], rrf_k: int
) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion: ``sum(weight / (rrf_k + rank))`` per item, best first."""
    scores: dict[int, float] = {}
    for ranking, weight in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class Searcher:
    """Searches one immutable index version."""

    def __init__(
        self,
        chunks: list[Chunk],
        dense_index: Any,
        bm25_dir: Path,
        collections: dict[str, list[int]],
    ) -> None:
        import bm25s

        self.chunks = chunks
        self.dense = dense_index
        self.bm25 = bm25s.BM25.load(str(bm25_dir), show_progress=False)
        self.collections = collections

    def search(
        self,
        query: str,
        query_vector: np.ndarray,
        k: int,
        collection: str | None = None,
        candidates: int = 50,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """Best ``k`` chunks; ``mode`` is ``hybrid``, ``dense`` or ``bm25`` (for comparisons)."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}")
        if not self.chunks:
            return []
        id_range = self._range(collection)
        if id_range is not None and id_range[0] >= id_range[1]:
            return []
        depth = max(k, candidates)
        dense_ids, dense_scores = self.dense_ranking(query_vector, depth, id_range)
        bm25_ids = self.bm25_ranking(query, depth, id_range) if mode != "dense" else []
        rankings = [(dense_ids, dense_weight), (bm25_ids, bm25_weight)]
        if mode != "hybrid":
            rankings = [rankings[0] if mode == "dense" else rankings[1]]
        fused = rrf_fuse(rankings, rrf_k)
        cosine = dict(zip(dense_ids, dense_scores, strict=True))
        missing = [i for i, _ in fused[:k] if i not in cosine]
        if missing:
            # BM25-only hits still get a similarity, for the low-confidence flag rule.
            vectors = np.stack([self.dense.reconstruct(int(i)) for i in missing])
            for i, score in zip(missing, vectors @ query_vector, strict=True):
                cosine[i] = float(score)
        return [
            Hit(chunk=self.chunks[i], score=score, dense_score=cosine[i], rank=rank)
            for rank, (i, score) in enumerate(fused[:k], start=1)
        ]

    def _range(self, collection: str | None) -> tuple[int, int] | None:
        if collection is None:
            return None
        first, end = self.collections.get(collection, [0, 0])
        return first, end

    def dense_ranking(
        self, query_vector: np.ndarray, depth: int, id_range: tuple[int, int] | None
    ) -> tuple[list[int], list[float]]:
        import faiss

        params = None
        if id_range is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorRange(*id_range))  # type: ignore[call-arg]
        depth = min(depth, self.dense.ntotal)
        scores, ids = self.dense.search(query_vector.reshape(1, -1), depth, params=params)
        pairs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        return [i for i, _ in pairs], [s for _, s in pairs]

    def bm25_ranking(self, query: str, depth: int, id_range: tuple[int, int] | None) -> list[int]:
        import bm25s

        tokens = bm25s.tokenize(
            [query],
            stopwords="en",
            stemmer=_english_stemmer(),
            return_ids=False,
            show_progress=False,
        )[0]
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        if not known:
            return []
        mask = None
        if id_range is not None:
            mask = np.zeros(len(self.chunks), dtype=np.float32)
            mask[id_range[0] : id_range[1]] = 1.0
        depth = min(depth, len(self.chunks))
        ids, scores = self.bm25.retrieve(
            [known], k=depth, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [int(i) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
