"""What the answer pipeline produces: the answer with its numbered sources, the options one
request may set, and the events it streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from retrieval.evidence import Evidence
from safety.pii import PIISpan
from training.prompt_format import NOT_IN_SOURCES

if TYPE_CHECKING:
    from assistant.llm.registry import ModelVersionInfo

NO_SOURCES_REPLY = NOT_IN_SOURCES
# Where the shown text comes from: the model's checked sentences, the evidence quoted, or
# nothing (the sources do not answer).
Origin = Literal["model", "evidence", "none"]


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
class GenerationOptions:
    """What one request may set: the OpenAI parameters and the model version."""

    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    version: ModelVersionInfo | None = None  # None: the active version


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
    origin: Origin = "model"  # model: checked model text; evidence: quoted; none: abstained
    question: str = ""  # the question as searched (a follow-up resolved)
    finish_reason: Literal["stop", "length"] = "stop"
    prompt_tokens: int = 0
    dropped: tuple[str, ...] = ()  # why each unshown model sentence was not shown
    # Why it abstained: "no_evidence", "unknown_subject" (names no source knows) or
    # "model_declined" (the model said the evidence does not answer); "" when it answered.
    abstain_reason: str = ""

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def abstained(self) -> bool:
        return self.origin == "none"


@dataclass(frozen=True)
class PipelineEvent:
    """``sources`` (data: list[Citation]), ``token`` (data: str) or ``done`` (data: Answer)."""

    kind: str
    data: Any


CITATION_FIELDS = frozenset(f.name for f in fields(Citation))


def citation_of(evidence: Evidence) -> Citation:
    chunk = evidence.hit.chunk
    return Citation(
        n=evidence.n,
        doc_id=chunk.doc_id,
        title=chunk.title,
        source_url=chunk.source_url,
        collection=chunk.collection,
        start=evidence.start,
        end=evidence.end,
        score=round(evidence.hit.dense_score, 4),
    )
