"""The answer pipeline: retrieve -> prompt with numbered sources -> generate -> cite -> flag."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from assistant.errors import IndexNotReady
from assistant.prompts import Source, attribute_sentences, build_prompt, cited_numbers
from assistant.settings import Settings
from retrieval.types import Hit, IndexMissing
from safety.guards import check_answer, disclaimer_for

# (entity type, value) pairs of the personal data in a text: the output guard's view of it.
PIIDetector = Callable[[str], Iterable[tuple[str, str]]]

if TYPE_CHECKING:
    from assistant.llm import LocalLLM
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

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class PipelineEvent:
    """``sources`` (data: list[Citation]), ``token`` (data: str) or ``done`` (data: Answer)."""

    kind: str
    data: Any


def citation_of(source: Source) -> Citation:
    chunk = source.hit.chunk
    return Citation(
        n=source.n,
        doc_id=chunk.doc_id,
        title=chunk.title,
        source_url=chunk.source_url,
        collection=chunk.collection,
        start=chunk.start,
        end=chunk.start + len(source.text),
        score=round(source.hit.dense_score, 4),
    )


class AnswerPipeline:
    """Answers one question from the index with the LLM; stores nothing."""

    def __init__(
        self,
        settings: Settings,
        index: IndexStore,
        llm: LocalLLM,
        detect_pii: PIIDetector | None = None,
    ) -> None:
        self.settings = settings
        self.index = index
        self.llm = llm
        self.detect_pii = detect_pii

    def retrieve(self, question: str, collection: str | None = None) -> list[Hit]:
        try:
            return self.index.search(question, self.settings.retrieval.top_k, collection)
        except IndexMissing as exc:
            raise IndexNotReady(str(exc)) from exc

    def stream(self, question: str, collection: str | None = None) -> Iterator[PipelineEvent]:
        """Sources first, then tokens as they are generated, then the finished Answer."""
        started = time.perf_counter()
        hits = self.retrieve(question, collection)
        retrieved = time.perf_counter()
        prompt = build_prompt(
            question,
            hits,
            self.llm.count_tokens,
            self.llm.context_size,
            self.settings.llm.max_tokens,
        )
        sources = [citation_of(s) for s in prompt.sources]
        yield PipelineEvent("sources", sources)

        pieces: list[str] = []
        generated = 0  # tokens from the model (the no-source reply is not generated)
        first_token: float | None = None
        if prompt.sources:
            for piece in self.llm.stream_chat(prompt.messages):
                if first_token is None:
                    first_token = time.perf_counter()
                pieces.append(piece)
                generated += 1
                yield PipelineEvent("token", piece)
        else:
            text = "I could not find anything about this in the documents I can search."
            pieces.append(text)
            yield PipelineEvent("token", text)
        finished = time.perf_counter()

        raw = "".join(pieces).strip()
        text, cited, flags = self._cite(raw, prompt.sources)
        if prompt.sources:
            # Output guard: made-up personal data, uncited doses/diagnoses/legal conclusions.
            report = check_answer(text, question, [s.text for s in prompt.sources], self.detect_pii)
            flags.extend(report.flags)
            drawn_on = [s.collection for s in sources if s.n in cited] or [
                collection or s.collection for s in sources
            ]
            disclaimer = disclaimer_for(drawn_on, self.settings.safety.disclaimers)
            if disclaimer:
                text = f"{text}\n\n{disclaimer}"
                yield PipelineEvent("token", f"\n\n{disclaimer}")
        best = max((h.dense_score for h in hits), default=None)
        if best is None or best < self.settings.retrieval.min_score:
            flags.append("low_retrieval_confidence")
        timings = {
            "retrieval_ms": round((retrieved - started) * 1000, 1),
            "ttft_ms": round(((first_token or finished) - started) * 1000, 1),
            "total_ms": round((finished - started) * 1000, 1),
            "completion_tokens": float(generated),
        }
        yield PipelineEvent(
            "done",
            Answer(
                text=text,
                citations=[s for s in sources if s.n in cited],
                sources=sources,
                flags=flags,
                retrieval_score=round(best, 4) if best is not None else None,
                timings=timings,
                model=self.llm.name,
            ),
        )

    def answer(self, question: str, collection: str | None = None) -> Answer:
        for event in self.stream(question, collection):
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
