"""The answer pipeline: resolve the follow-up -> retrieve -> select evidence -> check the
subject -> prompt -> generate -> check each sentence -> (fall back or abstain) -> guard -> flag.

Nothing reaches the reader unchecked: the model's text is cut into sentences as it streams,
each is checked against the evidence it cites (``safety.grounding``) and sent only if it
is supported. When no sentence of the model's survives, the reader gets the best evidence
sentences quoted with their numbers (origin ``evidence``); when the evidence is not about
what was asked, an honest "the sources do not answer" that cites nothing (origin ``none``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from assistant.asking.abstain import check_subject
from assistant.asking.answer import (
    Answer,
    Citation,
    GenerationOptions,
    Origin,
    PipelineEvent,
    citation_of,
)
from assistant.asking.cache import AnswerCache
from assistant.asking.cached_answers import CachedAnswers
from assistant.asking.checking import (
    Draft,
    SentenceChecker,
    dropped_sentence_flags,
    evidence_texts,
    extractive_answer,
)
from assistant.asking.conversation import PastTurn, resolve
from assistant.asking.prompts import TEMPLATE_OVERHEAD_TOKENS, build_prompt
from assistant.errors import AssistantError, IndexNotReady
from assistant.settings import Settings
from retrieval.evidence import Evidence, EvidenceConfig, InstructionCheck, select_evidence
from retrieval.types import Hit, IndexMissing
from safety.flags import Flag
from safety.grounding import (
    SentenceCheck,
    SupportConfig,
    content_words,
    is_degenerate,
)
from safety.guards import check_answer, disclaimer_for
from safety.pii import PIISpan
from training.prompt_format import NOT_IN_SOURCES

# The personal data found in a text (the PII engine's detect): the output guard reads it, and
# the chat reuses it to scrub the stored answer without a second pass.
SpanDetector = Callable[[str], Sequence[PIISpan]]

# Share of a document's name the question must contain to name that document.
NAMED_SHARE = 0.8

if TYPE_CHECKING:
    from assistant.infra.metrics import ServingMetrics
    from assistant.llm.base import LLMBackend
    from assistant.llm.router import Lease, ServingLLM
    from retrieval.embedding import Embedder
    from retrieval.store import IndexStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Found:
    """Stage 1's result: what the search found for the question."""

    question: str  # as searched: a follow-up resolved against the conversation
    evidence: list[Evidence]
    sources: list[Citation]  # one per piece of evidence, numbered as the model sees them
    best: float | None  # the best passage's cosine (retrieval confidence)
    at: float  # perf_counter when retrieval ended


@dataclass(frozen=True)
class _Generated:
    """Stage 2's result (the default: nothing was generated)."""

    prompt_tokens: int = 0
    finish: Literal["stop", "length"] = "stop"


@dataclass(frozen=True)
class _Outcome:
    """Stage 3's result: where the shown text comes from, and why it abstained if it did."""

    origin: Origin
    shown: list[SentenceCheck] = field(default_factory=list)
    abstain_reason: str = ""


@dataclass(frozen=True)
class _Guarded:
    """Stage 5's result: the text as sent (with its disclaimer) and its personal data."""

    text: str
    disclaimer: str
    pii_spans: list[PIISpan]


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
        embedder: Embedder | None = None,
        instruction_check: InstructionCheck | None = None,
    ) -> None:
        from assistant.llm.router import ServingLLM

        self.settings = settings
        self.index = index
        self.llm = llm if isinstance(llm, ServingLLM) else ServingLLM.fixed(llm)
        self.detect_pii = detect_pii

        self.metrics = metrics
        self.embedder = embedder if embedder is not None else index.embedder
        # Documents and answers are data: a sentence that speaks to the assistant ("ignore
        # your instructions", in an ingested page) is never evidence, nor shown.
        self.instruction_check = instruction_check
        answers = settings.answers
        self.evidence_config = EvidenceConfig(
            budget_tokens=answers.evidence_budget_tokens,
            max_sources=answers.evidence_sources,
            aspect_share=answers.evidence_aspect_share,
        )
        self.checker = SentenceChecker(
            SupportConfig(
                min_word_share=answers.support_word_share,
                paraphrase_word_share=answers.paraphrase_word_share,
                min_similarity=answers.support_similarity,
            ),
            self.similarity,
            instruction_check,
        )
        self.cached = (
            CachedAnswers(cache, index, detect_pii, metrics, self._count)
            if cache is not None
            else None
        )
        self._common_words: frozenset[str] | None = None

    # ---- stages ---------------------------------------------------------------------------
    def retrieve(self, question: str, collection: str | None = None) -> list[Hit]:
        k = max(self.settings.retrieval.top_k, self.settings.answers.evidence_sources)
        try:
            return self.index.search(question, k, collection)
        except IndexMissing as exc:
            raise IndexNotReady(str(exc)) from exc

    def resolve(
        self, question: str, history: Sequence[PastTurn], collection: str | None = None
    ) -> str:
        """The question with the conversation's subject where it points back; earlier
        turns are resolved in order, each against the ones before it."""

        def top_title(text: str) -> str | None:
            hits = self.retrieve(text, collection)
            return hits[0].chunk.title if hits else None

        resolved: list[PastTurn] = []
        for turn in history:
            resolved.append(
                PastTurn(resolve(turn.question, resolved, top_title), turn.cited_titles)
            )
        return resolve(question, resolved, top_title)

    def select(
        self, question: str, hits: Sequence[Hit], count_tokens: Callable[[str], int]
    ) -> list[Evidence]:
        return select_evidence(
            question,
            hits,
            self.embedder,
            count_tokens,
            self.evidence_config,
            is_instruction=self.instruction_check,
        )

    def common_words(self) -> frozenset[str]:
        if self._common_words is None:
            self._common_words = self.embedder.common_words()
        return self._common_words

    def names_document(self, question: str, evidence: Evidence) -> bool:
        """Whether the question names the document of ``evidence``: most of the words of its
        title (or of one of its other names), and something distinctive among them (two
        words or more, or a word that is not an everyday one)."""
        chunk = evidence.hit.chunk
        asked = set(content_words(question))
        common = self.common_words()
        for name in (chunk.title, *chunk.aliases):
            words = set(content_words(name))
            if not words or len(words & asked) / len(words) < NAMED_SHARE:
                continue
            if len(words) >= 2 or any(w not in common for w in words):
                return True
        return False

    def similarity(self, sentence: str, evidence: str) -> float:
        vectors = self.embedder.encode([sentence, evidence])
        a, b = vectors[0], vectors[1]
        denominator = float((a @ a) ** 0.5 * (b @ b) ** 0.5) or 1.0
        return float(a @ b) / denominator

    # ---- the whole answer -----------------------------------------------------------------
    def stream(
        self,
        question: str,
        collection: str | None = None,
        *,
        use_cache: bool = True,
        history: Sequence[PastTurn] = (),
        options: GenerationOptions | None = None,
    ) -> Iterator[PipelineEvent]:
        """Sources first, then checked sentences as they are generated, then the Answer.

        One model version serves the whole answer, even if another becomes active meanwhile.
        """
        options = options or GenerationOptions()
        started = time.perf_counter()
        with self.llm.use(options.version) as lease:
            key = None
            plain_request = not history and options == GenerationOptions(version=options.version)
            if use_cache and self.cached is not None and plain_request:
                key = self.cached.key(question, collection, lease)
                cached = self.cached.get(key)
                if cached is not None:
                    yield from self.cached.replay(cached, lease, started)
                    return
            try:
                answer = yield from self._answer(
                    question, collection, history, options, lease, started
                )
            except AssistantError as exc:
                self._count("errors", exc.code)
                raise
            except GeneratorExit:
                self._count("answers", "cancelled")
                raise
            except Exception:
                self._count("errors", "internal_error")
                raise
            cache = self.cached
            if key is not None and cache is not None and cache.cacheable(question, answer):
                cache.put(key, question, collection, lease, answer)

    def _answer(
        self,
        question: str,
        collection: str | None,
        history: Sequence[PastTurn],
        options: GenerationOptions,
        lease: Lease,
        started: float,
    ) -> Generator[PipelineEvent, None, Answer]:
        """The stages of one answer: find the evidence, generate (each sentence checked and
        streamed), decide what the reader gets, flag it, guard it, assemble it."""
        model = lease.backend
        found = self._find(question, collection, history, model.count_tokens)
        yield PipelineEvent("sources", found.sources)
        flags: list[str] = []
        if found.best is None or found.best < self.settings.retrieval.min_score:
            flags.append(Flag.LOW_RETRIEVAL_CONFIDENCE)
        subject = check_subject(
            found.question,
            self.index,
            self.common_words(),
            [f"{e.hit.chunk.title} {e.text}" for e in found.evidence],
        )
        draft = Draft()
        generated = _Generated()
        if found.evidence and subject.answerable:
            generated = yield from self._generate(found, history, options, model, draft)
        generated_at = time.perf_counter()

        outcome = self._outcome(found, subject.answerable, draft, flags)
        text, cited = yield from self._show(outcome, draft, flags)
        guarded = yield from self._guard_and_disclaim(
            text, question, found.evidence, found.sources, cited, collection, outcome.origin, flags
        )
        self._observe(draft, started, generated_at)
        self._count(
            "answers",
            {"model": "generated", "evidence": "fallback"}.get(outcome.origin, "abstained"),
        )
        answer = self._assemble(
            found, outcome, generated, draft, lease, flags, guarded, cited, (started, generated_at)
        )
        yield PipelineEvent("done", answer)
        return answer

    def _assemble(
        self,
        found: _Found,
        outcome: _Outcome,
        generated: _Generated,
        draft: Draft,
        lease: Lease,
        flags: list[str],
        guarded: _Guarded,
        cited: list[int],
        span: tuple[float, float],  # perf_counter at the start and when generation ended
    ) -> Answer:
        started, generated_at = span
        first = draft.first_shown or generated_at
        return Answer(
            text=guarded.text,
            citations=[s for s in found.sources if s.n in cited],
            sources=found.sources,
            flags=flags,
            retrieval_score=round(found.best, 4) if found.best is not None else None,
            timings={
                "retrieval_ms": round((found.at - started) * 1000, 1),
                "ttft_ms": round((first - started) * 1000, 1),
                "total_ms": round((generated_at - started) * 1000, 1),
                "completion_tokens": float(draft.generated),
            },
            model=lease.backend.name,
            model_version_id=lease.version_id,
            disclaimer=guarded.disclaimer,
            pii_spans=guarded.pii_spans,
            detected_pii=self.detect_pii is not None and outcome.origin != "none",
            origin=outcome.origin,
            question=found.question,
            finish_reason=generated.finish,
            prompt_tokens=generated.prompt_tokens,
            dropped=tuple(c.reason for c in draft.dropped),
            abstain_reason=outcome.abstain_reason,
        )

    def _find(
        self,
        question: str,
        collection: str | None,
        history: Sequence[PastTurn],
        count: Callable[[str], int],
    ) -> _Found:
        """Stage 1: the question as searched (a follow-up resolved), its hits and evidence."""
        searched = self.resolve(question, history, collection) if history else question
        hits = self.retrieve(searched, collection)
        evidence = self.select(searched, hits, count)
        return _Found(
            question=searched,
            evidence=evidence,
            sources=[citation_of(e) for e in evidence],
            best=max((h.dense_score for h in hits), default=None),
            at=time.perf_counter(),
        )

    def _generate(
        self,
        found: _Found,
        history: Sequence[PastTurn],
        options: GenerationOptions,
        model: Any,
        draft: Draft,
    ) -> Generator[PipelineEvent, None, _Generated]:
        """Stage 2: the model's answer to the evidence; each sentence is streamed once it is
        checked against the evidence it cites (``draft`` records what was shown and dropped)."""
        max_tokens = options.max_tokens or self.settings.llm.max_tokens
        prompt = build_prompt(
            found.question,
            found.evidence,
            model.count_tokens,
            model.context_size,
            max_tokens,
            earlier=[turn.question for turn in history[-2:]],
        )
        prompt_tokens = TEMPLATE_OVERHEAD_TOKENS + sum(
            model.count_tokens(m["content"]) for m in prompt.messages
        )
        pieces = model.stream_chat(
            prompt.messages, max_tokens, temperature=options.temperature, stop=options.stop
        )
        for text in self.checker.stream(pieces, evidence_texts(prompt.evidence), draft):
            yield PipelineEvent("token", text)
        return _Generated(prompt_tokens, "length" if draft.generated >= max_tokens else "stop")

    def _outcome(
        self, found: _Found, subject_known: bool, draft: Draft, flags: list[str]
    ) -> _Outcome:
        """Stage 3: what the reader gets: the model's checked sentences, the evidence quoted,
        or the statement that the sources do not say (adds the flags that decision raises)."""
        declined = draft.declined
        # The model may decline what the evidence answers only in part (a long narrative, a
        # page that covers the question in other words): when the question names the very
        # document found first, or retrieval is confident it found the page asked about, the
        # reader gets its evidence quoted (and a reviewer a look) rather than a decline.
        if (
            declined
            and found.evidence
            and subject_known
            and (
                self.names_document(found.question, found.evidence[0])
                or (found.best or 0.0) >= self.settings.answers.decline_override_score
            )
        ):
            declined = False
            flags.append(Flag.MODEL_DECLINED)
        if draft.shown:
            return _Outcome("model", list(draft.shown))
        if declined or not subject_known or not found.evidence:
            reason = (
                "no_evidence"
                if not found.evidence
                else "unknown_subject"
                if not subject_known
                else "model_declined"
            )
            return _Outcome("none", [], reason)
        quoted = extractive_answer(found.evidence, self.settings.answers.fallback_sentences)
        flags.append(Flag.FALLBACK_ANSWER)
        return _Outcome("evidence" if quoted else "none", quoted)

    def _show(
        self, outcome: _Outcome, draft: Draft, flags: list[str]
    ) -> Generator[PipelineEvent, None, tuple[str, list[int]]]:
        """Stage 4: send what the model stage did not (the quoted evidence, or the statement
        that the sources do not say); the shown text and the numbers it cites."""
        if outcome.origin == "evidence":
            for check in outcome.shown:
                if draft.first_shown is None:
                    draft.first_shown = time.perf_counter()
                yield PipelineEvent("token", check.render() + " ")
        flags += dropped_sentence_flags(outcome.origin, draft.dropped)
        if outcome.origin == "none":
            yield PipelineEvent("token", NOT_IN_SOURCES)
            return NOT_IN_SOURCES, []
        text = " ".join(c.render() for c in outcome.shown)
        if is_degenerate(text):
            flags.append(Flag.DEGENERATE_ANSWER)
        return text, sorted({n for c in outcome.shown for n in c.cited})

    def _guard_and_disclaim(
        self,
        text: str,
        question: str,
        evidence: Sequence[Evidence],
        sources: Sequence[Citation],
        cited: Sequence[int],
        collection: str | None,
        origin: Origin,
        flags: list[str],
    ) -> Generator[PipelineEvent, None, _Guarded]:
        """The output guard over the shown text, and the disclaimer of what it draws on."""
        if origin == "none":
            return _Guarded(text, "", [])
        drawn_on = [s.collection for s in sources if s.n in cited] or [
            collection or s.collection for s in sources
        ]
        disclaimer = disclaimer_for(drawn_on, self.settings.safety.disclaimers)
        final = f"{text}\n\n{disclaimer}" if disclaimer else text
        # One PII pass over the final text: the output guard reads it, the store reuses it.
        spans = list(self.detect_pii(final)) if self.detect_pii is not None else []
        findings = [(s.entity_type, final[s.start : s.end]) for s in spans if s.end <= len(text)]
        report = check_answer(
            text,
            question,
            [e.text for e in evidence],
            (lambda _text: findings) if self.detect_pii is not None else None,
        )
        flags.extend(report.flags)
        if disclaimer:
            yield PipelineEvent("token", f"\n\n{disclaimer}")
            return _Guarded(final, disclaimer, spans)
        return _Guarded(text, disclaimer, spans)

    def _observe(self, draft: Draft, started: float, finished: float) -> None:
        if self.metrics is None or not draft.generated:
            return
        first = draft.first_shown or finished
        self.metrics.ttft.labels(cache="miss").observe(first - started)
        self.metrics.tokens.inc(draft.generated)

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
        self,
        question: str,
        collection: str | None = None,
        *,
        use_cache: bool = True,
        history: Sequence[PastTurn] = (),
        options: GenerationOptions | None = None,
    ) -> Answer:
        for event in self.stream(
            question, collection, use_cache=use_cache, history=history, options=options
        ):
            if event.kind == "done":
                return event.data
        raise RuntimeError("the pipeline ended without an answer")
