"""The answer cache as the pipeline uses it: which answers may be stored, under which key
(question, collection, index version, model version), and a stored answer replayed as the
same events a generated one sends. A cache that fails never fails the answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from assistant.asking.answer import CITATION_FIELDS, Answer, Citation, PipelineEvent
from assistant.asking.cache import AnswerCache, CachedAnswer, cache_key, normalise_for_cache

if TYPE_CHECKING:
    from assistant.infra.metrics import ServingMetrics
    from assistant.llm.router import Lease
    from retrieval.store import IndexStore
    from safety.pii import PIISpan

logger = logging.getLogger(__name__)


def model_key(lease: Lease) -> str:
    return f"{lease.version_id}:{lease.backend.name}"


class CachedAnswers:
    def __init__(
        self,
        cache: AnswerCache,
        index: IndexStore,
        detect_pii: Callable[[str], Sequence[PIISpan]] | None,
        metrics: ServingMetrics | None,
        count: Callable[[str, str], None],
    ) -> None:
        self.cache, self.index, self.detect_pii = cache, index, detect_pii
        self.metrics, self.count = metrics, count

    def key(self, question: str, collection: str | None, lease: Lease) -> str:
        index_version = self.index.current_name() or "none"
        return cache_key(question, collection, index_version, model_key(lease))

    def get(self, key: str) -> CachedAnswer | None:
        try:
            cached = self.cache.get(key)
        except Exception:  # a cache that fails must not fail the answer
            logger.exception("answer cache lookup failed")
            return None
        self.count("cache", "hit" if cached is not None else "miss")
        return cached

    def cacheable(self, question: str, answer: Answer) -> bool:
        # Only the model's own checked answers: flagged ones go to review and may change, a
        # fallback or an abstention may not be what a later model says; questions with
        # personal data are the asker's own business; without a PII detector that cannot
        # be checked.
        if answer.flags or answer.origin != "model" or not answer.sources:
            return False
        return self.detect_pii is not None and not list(self.detect_pii(question))

    def put(
        self, key: str, question: str, collection: str | None, lease: Lease, answer: Answer
    ) -> None:
        entry = CachedAnswer(
            text=answer.text,
            sources=[c.to_dict() for c in answer.sources],
            cited=[c.n for c in answer.citations],
            retrieval_score=answer.retrieval_score,
        )
        try:
            self.cache.put(
                key,
                entry,
                question=normalise_for_cache(question),
                collection=collection,
                index_version=self.index.current_name() or "none",
                model_version=model_key(lease),
            )
        except Exception:
            logger.exception("answer cache write failed")

    def replay(self, cached: CachedAnswer, lease: Lease, started: float) -> Iterator[PipelineEvent]:
        sources = [
            Citation(**{k: v for k, v in s.items() if k in CITATION_FIELDS}) for s in cached.sources
        ]
        yield PipelineEvent("sources", sources)
        yield PipelineEvent("token", cached.text)
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.ttft.labels(cache="hit").observe(elapsed)
        self.count("answers", "cached")
        yield PipelineEvent(
            "done",
            Answer(
                text=cached.text,
                citations=[s for s in sources if s.n in cached.cited],
                sources=sources,
                flags=[],
                retrieval_score=cached.retrieval_score,
                timings={
                    "retrieval_ms": 0.0,
                    "ttft_ms": round(elapsed * 1000, 1),
                    "total_ms": round(elapsed * 1000, 1),
                    "completion_tokens": 0.0,
                    "cache_hit": 1.0,
                },
                model=lease.backend.name,
                model_version_id=lease.version_id,
                origin="model",
            ),
        )
