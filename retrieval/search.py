"""Hybrid search over one index version: FAISS vectors and BM25 keywords, fused per document.

Hybrid search works in two steps, because the two questions it answers want different
evidence:

1. **Which documents?** Both retrievers propose candidate passages; each candidate document
   gets its best cosine similarity and its best BM25 score, each scaled to [0, 1] over the
   candidates, plus the share of its title's words that the question names; a weighted
   sum of the three ranks the documents.
2. **Which passages of those documents?** Every passage of the best documents is scored
   again: its cosine similarity, and BM25 with the term weights (IDF) computed *inside the
   document*. Words that are everywhere in one document (a contract's party names, a
   disease's name on its own page) then stop counting, and the words that tell its passages
   apart (``terminate``, ``inherited``) decide.

A passage's score is its document's score plus a smaller weight times its passage score, so
passages of a clearly better document come first, and a close second document still gets
its best passage in. ``dense`` and ``bm25`` modes rank passages by one retriever alone (for
comparisons); ``rrf`` fusion is the plain reciprocal-rank fusion of the two rankings.

The arithmetic of the two steps is in ``retrieval.document_fusion``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrieval.answer_types import AnswerTypes
from retrieval.config import SearchParams
from retrieval.document_fusion import HybridQuery, fuse_by_document
from retrieval.names import DocumentNames
from retrieval.spelling import SpellingCorrector
from retrieval.types import Chunk, Hit

logger = logging.getLogger(__name__)

_stemmer: Any = None

SEARCH_MODES = ("hybrid", "dense", "bm25")
# Words besides a document's name from which a question says fully what it asks about it.
INTENT_WORDS = 3


def bm25_tokenize(texts: Sequence[str]) -> Any:
    """Lower-cased, English-stemmed word tokens without stop words (bm25s's tokenizer)."""
    return _tokenize(texts, return_ids=True)


def bm25_tokenize_words(texts: Sequence[str]) -> list[list[str]]:
    """The same tokens as ``bm25_tokenize``, as strings per text."""
    return _tokenize(texts, return_ids=False)


def _tokenize(texts: Sequence[str], return_ids: bool) -> Any:
    import bm25s

    return bm25s.tokenize(
        list(texts),
        stopwords="en",
        stemmer=_english_stemmer(),
        return_ids=return_ids,
        show_progress=False,
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


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` largest scores, best first (ties by index)."""
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))]


@dataclass(frozen=True)
class _Candidates:
    """What the two retrievers propose for one query."""

    words: list[str]  # the query's stemmed words (none in dense mode)
    terms: list[int]  # their BM25 vocabulary ids
    bm25_scores: np.ndarray | None  # every chunk's BM25 score; None without known words
    bm25_ids: list[int]  # the best BM25 passages with a positive score
    dense_ids: list[int]  # the passages nearest the query vector


class Searcher:
    """Searches one immutable index version."""

    def __init__(
        self,
        chunks: list[Chunk],
        vectors: np.ndarray,
        dense_index: Any,
        bm25: Any,
        collections: dict[str, list[int]],
        title_vectors: np.ndarray | None = None,
    ) -> None:
        self.chunks = chunks
        self.title_vectors = title_vectors  # one per document, in document order
        self.vectors = vectors
        self.dense = dense_index
        self.bm25 = bm25
        self.collections = collections
        self._vocab: dict[str, int] = bm25.vocab_dict if bm25 is not None else {}
        # Passages of one document are stored next to each other: a document is a range.
        starts = [
            i for i in range(len(chunks)) if i == 0 or chunks[i].doc_id != chunks[i - 1].doc_id
        ]
        self.doc_start = np.array(starts, dtype=np.int64)
        self.doc_end = np.append(self.doc_start[1:], len(chunks)).astype(np.int64)
        self.chunk_doc = np.repeat(np.arange(len(starts)), self.doc_end - self.doc_start)
        if bm25 is not None:
            scores = bm25.scores
            self._data = np.asarray(scores["data"], dtype=np.float32)
            self._indices = np.asarray(scores["indices"], dtype=np.int64)
            self._indptr = np.asarray(scores["indptr"], dtype=np.int64)
        firsts = [chunks[i] for i in starts]
        self._titles = "\n".join(
            name for c in firsts for name in (c.title, *c.aliases)
        )  # every document name, for phrase lookups
        self.names = DocumentNames.build(
            [c.title for c in firsts], [c.aliases for c in firsts], bm25_tokenize_words
        )
        # bm25s files a placeholder word past the last posting list: it has no frequency.
        document_frequency = np.diff(self._indptr).tolist() if bm25 is not None else []
        known = self.names.vocabulary
        known.update(
            (word, document_frequency[i])
            for word, i in self._vocab.items()
            if i < len(document_frequency)
        )
        self._speller = SpellingCorrector(known)

    def title_match(self, words: set[str], docs: np.ndarray) -> np.ndarray:
        """Per document, the largest share of one of its names' words the query contains.

        Pages are titled by their topic, and questions name it: "spinocerebellar ataxia
        type 6" then beats the pages on types 12 and 14 that the passages alone preferred.
        A document's aliases count as its title does (``DocumentNames``). (Measured against
        Dice, which also rewards titles naming more of the question: slightly lower
        recall@1 on both dev sets.)
        """
        if not words or not len(docs):
            return np.zeros(len(docs), dtype=np.float32)
        return self.names.coverage(words, docs)

    @property
    def has_keywords(self) -> bool:
        return self.bm25 is not None

    @property
    def has_vectors(self) -> bool:
        return self.dense is not None and self.dense.ntotal == len(self.chunks)

    def search(
        self,
        query: str,
        query_vector: np.ndarray | None,
        k: int,
        collection: str | None = None,
        mode: str = "hybrid",
        params: SearchParams | None = None,
        answer_types: AnswerTypes | None = None,
    ) -> list[Hit]:
        """Best ``k`` chunks; ``mode`` is ``hybrid``, ``dense`` or ``bm25`` (for comparisons).
        ``answer_types`` (hybrid only) say what the passage answering each kind of question
        looks like, for the documents of their collection."""
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}")
        params = params or SearchParams()
        if not self.chunks or k <= 0:
            return []
        first, end = self._range(collection)
        if first >= end:
            return []
        mode = self._usable_mode(mode, query_vector)
        found = self._candidates(query, query_vector, mode, max(k, params.candidates), first, end)
        ranked = self._rank(found, query_vector, mode, params, answer_types, first, end)
        return self._hits(ranked[:k], query_vector, mode)

    def _usable_mode(self, mode: str, query_vector: np.ndarray | None) -> str:
        """``mode``, or the one retriever that can serve while the other cannot."""
        if query_vector is None or not self.has_vectors:
            return "bm25"  # vectors are still being computed: keyword search serves meanwhile
        if not self.has_keywords:
            return "dense"
        return mode

    def _candidates(
        self,
        query: str,
        query_vector: np.ndarray | None,
        mode: str,
        depth: int,
        first: int,
        end: int,
    ) -> _Candidates:
        """The best ``depth`` passages in ``[first, end)`` of each retriever ``mode`` uses."""
        words = self.query_words(query) if mode != "dense" else []
        terms = [self._vocab[w] for w in words if w in self._vocab]
        bm25_scores = self.bm25_scores(terms, first, end) if terms else None
        bm25_ids: list[int] = []
        if bm25_scores is not None:
            best = _top(bm25_scores, depth)
            bm25_ids = best[bm25_scores[best] > 0].tolist()
        dense_ids: list[int] = []
        if mode != "bm25":
            assert query_vector is not None
            dense_ids = self.dense_ranking(query_vector, depth, first, end)
        return _Candidates(words, terms, bm25_scores, bm25_ids, dense_ids)

    def _rank(
        self,
        found: _Candidates,
        query_vector: np.ndarray | None,
        mode: str,
        params: SearchParams,
        answer_types: AnswerTypes | None,
        first: int,
        end: int,
    ) -> list[tuple[int, float]]:
        """(chunk id, score), best first: one retriever's order, RRF, or fused by document."""
        if mode == "dense":
            return [(i, 0.0) for i in found.dense_ids]
        if mode == "bm25":
            return [(i, 0.0) for i in found.bm25_ids]
        if params.fusion == "rrf":
            return rrf_fuse([(found.dense_ids, 1.0), (found.bm25_ids, 1.0)], params.rrf_k)
        assert query_vector is not None
        named = self.named_passages(set(found.words), params.named_docs, first, end)
        return fuse_by_document(
            self,
            HybridQuery(found.words, found.terms, query_vector),
            found.dense_ids + found.bm25_ids + named,
            found.bm25_scores,
            params,
            answer_types,
        )

    def _hits(
        self, ranked: list[tuple[int, float]], query_vector: np.ndarray | None, mode: str
    ) -> list[Hit]:
        """``ranked`` as hits, each with its cosine similarity to the query."""
        ids = np.array([i for i, _ in ranked], dtype=np.int64)
        cosines = (
            self.cosines(ids, query_vector)
            if query_vector is not None and self.has_vectors
            else np.zeros(len(ids), dtype=np.float32)
        )
        return [
            Hit(
                chunk=self.chunks[i],
                score=float(score) if mode == "hybrid" else float(cosine if mode == "dense" else 0),
                dense_score=float(cosine),
                rank=rank,
            )
            for rank, ((i, score), cosine) in enumerate(zip(ranked, cosines, strict=True), start=1)
        ]

    def _range(self, collection: str | None) -> tuple[int, int]:
        if collection is None:
            return 0, len(self.chunks)
        first, end = self.collections.get(collection, [0, 0])
        return first, end

    def cosines(self, ids: np.ndarray, query_vector: np.ndarray) -> np.ndarray:
        """The cosine similarity of chunks ``ids`` to the query (the vectors are unit length)."""
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.vectors[ids], dtype=np.float32) @ query_vector

    # ---- the two retrievers ------------------------------------------------------------
    def dense_ranking(
        self, query_vector: np.ndarray, depth: int, first: int, end: int
    ) -> list[int]:
        import faiss

        # One query at a time needs no OpenMP team. The setting belongs to the calling
        # thread, and every request thread would otherwise get a team of its own: more
        # OpenMP threads than cores makes libgomp stop spin-waiting, which slowed llama.cpp's
        # decoding (also OpenMP) by a third on 2 cores.
        faiss.omp_set_num_threads(1)
        params = None
        if (first, end) != (0, len(self.chunks)):
            # faiss's SWIG stubs declare no keyword arguments; sel= is its documented use.
            selector = faiss.IDSelectorRange(first, end)
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        depth = min(depth, end - first)
        _, ids = self.dense.search(query_vector.reshape(1, -1), depth, params=params)
        return [int(i) for i in ids[0] if i >= 0]

    def query_words(self, query: str) -> list[str]:
        """The query's stemmed words (no stop words), misspellings read as the index's words.

        A word that neither the passages nor the documents' names contain is read as the
        closest word that one of them does (``SpellingCorrector``); when none is close it
        stays as it is, matching nothing but still counted as part of the question.
        """
        words = []
        for token in bm25_tokenize_words([query])[0]:
            if token not in self._vocab and token not in self.names.by_word:
                token = self._speller.correct(token) or token
            words.append(token)
        return words

    def unknown_words(self, query: str, exact: bool = False) -> list[str]:
        """The query's words (lower case, as written) that no passage or document name
        contains, even read as a misspelling of one (``exact``: as written)."""
        unknown = []
        for word in dict.fromkeys(re.findall(r"[a-z0-9]+", query.lower())):
            tokens = bm25_tokenize_words([word])[0]  # empty for a stop word
            if tokens and all(
                t not in self._vocab
                and t not in self.names.by_word
                and (exact or self._speller.correct(t) is None)
                for t in tokens
            ):
                unknown.append(word)
        return unknown

    def has_phrase(self, phrase: str) -> bool:
        """Whether some passage or document name writes ``phrase`` (case and the spacing
        between its words aside). Passages holding all its indexed words are read whole."""
        words = re.findall(r"[a-z0-9]+", phrase.lower())
        terms = bm25_tokenize_words([phrase])[0] if words else []
        if not terms:
            return True  # stop words only: nothing to look up
        pattern = re.compile(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", re.IGNORECASE)
        if pattern.search(self._titles):
            return True
        if self.bm25 is None or any(t not in self._vocab for t in terms):
            return False
        postings = sorted(
            (
                self._indices[self._indptr[i] : self._indptr[i + 1]]
                for i in {self._vocab[t] for t in terms}
            ),
            key=len,
        )
        holding = postings[0]
        for more in postings[1:]:
            holding = np.intersect1d(holding, more, assume_unique=True)
        return any(pattern.search(self.chunks[int(i)].text) for i in holding)

    def query_terms(self, query: str) -> list[int]:
        """BM25 vocabulary ids of the query's words (``query_words``)."""
        return [self._vocab[w] for w in self.query_words(query) if w in self._vocab]

    def named_passages(self, words: set[str], limit: int, first: int, end: int) -> list[int]:
        """Every passage of the documents (in ``[first, end)``) that the query names whole."""
        if not limit or not words:
            return []
        passages: list[int] = []
        for doc in self.names.named(words, limit * 4):
            start, stop = int(self.doc_start[doc]), int(self.doc_end[doc])
            if first <= start and stop <= end:
                passages.extend(range(start, stop))
                limit -= 1
                if not limit:
                    break
        return passages

    def bm25_scores(self, terms: list[int], first: int, end: int) -> np.ndarray:
        """BM25 score of every chunk in ``[first, end)`` (zeros elsewhere)."""
        scores = np.zeros(len(self.chunks), dtype=np.float32)
        for term in terms:
            lo, hi = self._indptr[term], self._indptr[term + 1]
            scores[self._indices[lo:hi]] += self._data[lo:hi]  # a term lists a chunk once
        if (first, end) != (0, len(self.chunks)):
            scores[:first] = 0
            scores[end:] = 0
        return scores

    def local_bm25(self, terms: list[int], docs: np.ndarray) -> np.ndarray:
        """BM25 of every chunk of ``docs``, with IDF counted inside each document only.

        bm25s stores ``idf(term) * tf_part(term, chunk)``; rescaling each posting by
        ``local_idf / global_idf`` swaps the corpus IDF for its document's own. Returns a
        score per chunk id (zeros outside ``docs``).
        """
        scores = np.zeros(len(self.chunks), dtype=np.float32)
        if not terms or not len(docs):
            return scores
        slot = np.full(len(self.doc_start), -1, dtype=np.int64)
        slot[docs] = np.arange(len(docs))
        sizes = (self.doc_end[docs] - self.doc_start[docs]).astype(np.float32)
        total = len(self.chunks)
        unique, counts = np.unique(np.array(terms, dtype=np.int64), return_counts=True)
        # All postings of all query terms at once: position p belongs to term term_of[p].
        lo, hi = self._indptr[unique], self._indptr[unique + 1]
        lengths = hi - lo
        term_of = np.repeat(np.arange(len(unique)), lengths)
        postings = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        postings += np.repeat(lo, lengths)
        chunk_ids = self._indices[postings]
        where = slot[self.chunk_doc[chunk_ids]]
        inside = where >= 0
        postings, term_of, chunk_ids, where = (
            postings[inside],
            term_of[inside],
            chunk_ids[inside],
            where[inside],
        )
        df_local = np.bincount(term_of * len(docs) + where, minlength=len(unique) * len(docs))
        df_local = df_local.reshape(len(unique), len(docs)).astype(np.float32)
        idf_local = np.log1p((sizes[None, :] - df_local + 0.5) / (df_local + 0.5))
        idf_global = np.log1p((total - lengths + 0.5) / (lengths + 0.5)).astype(np.float32)
        factor = counts[term_of] * idf_local[term_of, where] / idf_global[term_of]
        weights = self._data[postings] * factor
        scores += np.bincount(chunk_ids, weights=weights, minlength=len(scores)).astype(np.float32)
        return scores

    def intent_weights(self, docs: np.ndarray, words: list[str], weight: float) -> np.ndarray:
        """Per document, how much the question-without-the-title counts, in [0, weight].

        It counts as much as the question names the document's title, and fully from
        INTENT_WORDS other words on ("how many people affected"); a bare name keeps the
        plain similarity, and "What is X?" (one other word) mostly does.
        """
        query = set(words)
        if not weight or not query:
            return np.zeros(len(docs), dtype=np.float32)
        result = np.zeros(len(docs), dtype=np.float32)
        for position, doc in enumerate(docs.tolist()):
            title = self.names.title_words[doc]
            if title:
                named = len(title & query) / len(title)
                result[position] = weight * named * min(1.0, len(query - title) / INTENT_WORDS)
        return result
