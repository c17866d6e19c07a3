"""The answer pipeline: (cache) -> retrieve -> prompt with numbered sources -> generate -> cite
-> output guard -> flag."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from assistant.cache import AnswerCache, CachedAnswer, cache_key, normalise_for_cache
from assistant.errors import AssistantError, IndexNotReady
from assistant.prompts import Source, attribute_sentences, build_prompt, cited_numbers
from assistant.settings import Settings
from retrieval.types import Hit, IndexMissing
from safety.guards import check_answer, disclaimer_for
from safety.pii import PIISpan

# The personal data found in a text (the PII engine's detect): the output guard reads it, and
# the chat reuses it to scrub the stored answer without a second pass.
SpanDetector = Callable[[str], Sequence[PIISpan]]

NO_SOURCES_REPLY = "I could not find anything about this in the documents I can search."

if TYPE_CHECKING:
    from assistant.llm.base import LLMBackend
    from assistant.llm.router import Lease, ServingLLM
    from assistant.metrics import ServingMetrics
    from retrieval.store import IndexStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Citation:
    """A numbered source as the user sees it; ``start``/``end`` index the document text."""

    n: int
    doc_id: str
    title: str
    source_url: str
    collection: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[Citation]  # the sources the answer cites
    sources: list[Citation]  # every source given to the model
    flags: list[str]
    retrieval_score: float | None
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    model_version_id: int | None = None  # the registry version that generated it
    disclaimer: str = ""  # appended to ``text`` (evaluation strips it)
    pii_spans: list[PIISpan] = field(default_factory=list)  # personal data found in ``text``
    detected_pii: bool = False  # whether ``pii_spans`` is the PII engine's word on ``text``

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class PipelineEvent:
    """``sources`` (data: list[Citation]), ``token`` (data: str) or ``done`` (data: Answer)."""

    kind: str
    data: Any


CITATION_FIELDS = frozenset(f.name for f in fields(Citation))


def _model_key(lease: Lease) -> str:
    return f"{lease.version_id}:{lease.backend.name}"


def citation_of(source: Source) -> Citation:
    chunk = source.hit.chunk
    start, end = source.span
    return Citation(
        n=source.n,
        doc_id=chunk.doc_id,
        title=chunk.title,
        source_url=chunk.source_url,
        collection=chunk.collection,
        start=start,
        end=end,
        score=round(source.hit.dense_score, 4),
    )


class AnswerPipeline:
    """Answers one question from the index with the LLM; stores nothing but cache entries."""

    def __init__(
        self,
        settings: Settings,
        index: IndexStore,
        llm: ServingLLM | LLMBackend,
        detect_pii: SpanDetector | None = None,
        cache: AnswerCache | None = None,
        metrics: ServingMetrics | None = None,
    ) -> None:
        from assistant.llm.router import ServingLLM

        self.settings = settings
        self.index = index
        self.llm = llm if isinstance(llm, ServingLLM) else ServingLLM.fixed(llm)
        self.detect_pii = detect_pii
        self.cache = cache
        self.metrics = metrics

    def retrieve(self, question: str, collection: str | None = None) -> list[Hit]:
        try:
            return self.index.search(question, self.settings.retrieval.top_k, collection)
        except IndexMissing as exc:
            raise IndexNotReady(str(exc)) from exc

    def stream(
        self, question: str, collection: str | None = None, *, use_cache: bool = True
    ) -> Iterator[PipelineEvent]:
        """Sources first, then tokens as they are generated, then the finished Answer.

        One model version serves the whole answer, even if another becomes active meanwhile.
        """
        started = time.perf_counter()
        with self.llm.use() as lease:
            key = None
            if use_cache and self.cache is not None:
                key = self._cache_key(question, collection, lease)
                cached = self._cache_get(key)
                if cached is not None:
                    yield from self._replay(cached, collection, lease, started)
                    return
            try:
                answer = yield from self._generate(question, collection, lease, started)
            except AssistantError as exc:
                self._count("errors", exc.code)
                raise
            except GeneratorExit:
                self._count("answers", "cancelled")
                raise
            except Exception:
                self._count("errors", "internal_error")
                raise
            if key is not None and self._cacheable(question, answer):
                self._cache_put(key, question, collection, lease, answer)

    def _generate(
        self, question: str, collection: str | None, lease: Lease, started: float
    ) -> Generator[PipelineEvent, None, Answer]:
        model = lease.backend
        hits = self.retrieve(question, collection)
        retrieved = time.perf_counter()
        prompt = build_prompt(
            question,
            hits,
            model.count_tokens,
            model.context_size,
            self.settings.llm.max_tokens,
            compact=self.settings.llm.compact_context,
        )
        sources = [citation_of(s) for s in prompt.sources]
        yield PipelineEvent("sources", sources)

        pieces: list[str] = []
        generated = 0  # tokens from the model (the no-source reply is not generated)
        first_token: float | None = None
        if prompt.sources:
            for piece in model.stream_chat(prompt.messages):
                if first_token is None:
                    first_token = time.perf_counter()
                pieces.append(piece)
                generated += 1
                yield PipelineEvent("token", piece)
        else:
            pieces.append(NO_SOURCES_REPLY)
            yield PipelineEvent("token", NO_SOURCES_REPLY)
        finished = time.perf_counter()

        raw = "".join(pieces).strip()
        text, cited, flags = self._cite(raw, prompt.sources)
        disclaimer = ""
        spans: list[PIISpan] = []
        if prompt.sources:
            drawn_on = [s.collection for s in sources if s.n in cited] or [
                collection or s.collection for s in sources
            ]
            disclaimer = disclaimer_for(drawn_on, self.settings.safety.disclaimers)
            final = f"{text}\n\n{disclaimer}" if disclaimer else text
            # One PII pass over the final text: the output guard reads it, the store reuses it.
            spans = list(self.detect_pii(final)) if self.detect_pii is not None else []
            findings = [
                (s.entity_type, final[s.start : s.end]) for s in spans if s.end <= len(text)
            ]
            # Output guard: made-up personal data, uncited doses/diagnoses/legal conclusions.
            report = check_answer(
                text,
                question,
                [s.text for s in prompt.sources],
                (lambda _text: findings) if self.detect_pii is not None else None,
            )
            flags.extend(report.flags)
            if disclaimer:
                text = final
                yield PipelineEvent("token", f"\n\n{disclaimer}")
        best = max((h.dense_score for h in hits), default=None)
        if best is None or best < self.settings.retrieval.min_score:
            flags.append("low_retrieval_confidence")
        ttft = (first_token or finished) - started
        timings = {
            "retrieval_ms": round((retrieved - started) * 1000, 1),
            "ttft_ms": round(ttft * 1000, 1),
            "total_ms": round((finished - started) * 1000, 1),
            "completion_tokens": float(generated),
        }
        if self.metrics is not None and generated:
            self.metrics.ttft.labels(cache="miss").observe(ttft)
            self.metrics.tokens.inc(generated)
            if generated > 1 and first_token is not None and finished > first_token:
                self.metrics.tokens_per_s.observe((generated - 1) / (finished - first_token))
        self._count("answers", "generated" if generated else "no_sources")
        answer = Answer(
            text=text,
            citations=[s for s in sources if s.n in cited],
            sources=sources,
            flags=flags,
            retrieval_score=round(best, 4) if best is not None else None,
            timings=timings,
            model=model.name,
            model_version_id=lease.version_id,
            disclaimer=disclaimer,
            pii_spans=spans,
            detected_pii=bool(prompt.sources) and self.detect_pii is not None,
        )
        yield PipelineEvent("done", answer)
        return answer

    # ---- the answer cache ---------------------------------------------------------------------
    def _cache_key(self, question: str, collection: str | None, lease: Lease) -> str:
        index_version = self.index.current_name() or "none"
        return cache_key(question, collection, index_version, _model_key(lease))

    def _cache_get(self, key: str) -> CachedAnswer | None:
        assert self.cache is not None
        try:
            cached = self.cache.get(key)
        except Exception:  # a cache that fails must not fail the answer
            logger.exception("answer cache lookup failed")
            return None
        self._count("cache", "hit" if cached is not None else "miss")
        return cached

    def _cacheable(self, question: str, answer: Answer) -> bool:
        # Flagged answers go to review and may change; questions with personal data are the
        # asker's own business; without a PII detector that cannot be checked.
        if answer.flags or not answer.timings.get("completion_tokens") or not answer.sources:
            return False
        return self.detect_pii is not None and not list(self.detect_pii(question))

    def _cache_put(
        self, key: str, question: str, collection: str | None, lease: Lease, answer: Answer
    ) -> None:
        assert self.cache is not None
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
                model_version=_model_key(lease),
            )
        except Exception:
            logger.exception("answer cache write failed")

    def _replay(
        self, cached: CachedAnswer, collection: str | None, lease: Lease, started: float
    ) -> Iterator[PipelineEvent]:
        sources = [
            Citation(**{k: v for k, v in s.items() if k in CITATION_FIELDS}) for s in cached.sources
        ]
        yield PipelineEvent("sources", sources)
        yield PipelineEvent("token", cached.text)
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.ttft.labels(cache="hit").observe(elapsed)
        self._count("answers", "cached")
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
            ),
        )

    def _count(self, counter: str, label: str) -> None:
        if self.metrics is None:
            return
        if counter == "errors":
            self.metrics.errors.labels(code=label).inc()
        elif counter == "cache":
            self.metrics.cache.labels(result=label).inc()
        else:
            self.metrics.answers.labels(outcome=label).inc()

    def answer(
        self, question: str, collection: str | None = None, *, use_cache: bool = True
    ) -> Answer:
        for event in self.stream(question, collection, use_cache=use_cache):
            if event.kind == "done":
                return event.data  # type: ignore[no-any-return]
        raise RuntimeError("the pipeline ended without an answer")

    @staticmethod
    def _cite(raw: str, sources: list[Source]) -> tuple[str, list[int], list[str]]:
        """The answer with citation markers, the valid numbers cited, and citation flags."""
        flags: list[str] = []
        numbers = cited_numbers(raw)
        valid = {s.n for s in sources}
        if any(n not in valid for n in numbers):
            flags.append("invalid_citation")
        text = raw if numbers else attribute_sentences(raw, sources)
        cited = [n for n in cited_numbers(text) if n in valid]
        if sources and not cited:
            flags.append("missing_citation")
        return text, cited, flags
