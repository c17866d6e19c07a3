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
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from assistant.abstain import check_subject
from assistant.cache import AnswerCache, CachedAnswer, cache_key, normalise_for_cache
from assistant.conversation import PastTurn, resolve
from assistant.errors import AssistantError, IndexNotReady
from assistant.prompts import TEMPLATE_OVERHEAD_TOKENS, build_prompt
from assistant.settings import Settings
from retrieval.evidence import Evidence, EvidenceConfig, InstructionCheck, select_evidence
from retrieval.types import Hit, IndexMissing
from safety.flags import Flag
from safety.grounding import (
    MIN_ANSWER_WORDS,
    SentenceCheck,
    SentenceSplitter,
    SupportConfig,
    check_sentence,
    content_words,
    is_degenerate,
)
from safety.guards import check_answer, disclaimer_for
from safety.pii import PIISpan
from training.prompt_format import NOT_IN_SOURCES

# The personal data found in a text (the PII engine's detect): the output guard reads it, and
# the chat reuses it to scrub the stored answer without a second pass.
SpanDetector = Callable[[str], Sequence[PIISpan]]

NO_SOURCES_REPLY = NOT_IN_SOURCES
Origin = Literal["model", "evidence", "none"]
# Unshown sentences in a row, with nothing shown yet, after which the model is stopped: it
# is not writing from the evidence, and the quoted evidence will be shown instead.
MAX_UNSUPPORTED_RUN = 3
# Share of a document's name the question must contain to name that document.
NAMED_SHARE = 0.8

if TYPE_CHECKING:
    from assistant.llm.base import LLMBackend
    from assistant.llm.router import Lease, ServingLLM
    from assistant.metrics import ServingMetrics
    from assistant.registry import ModelVersionInfo
    from retrieval.embedding import Embedder
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


def _model_key(lease: Lease) -> str:
    return f"{lease.version_id}:{lease.backend.name}"


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


def evidence_texts(evidence: Sequence[Evidence]) -> dict[int, str]:
    """What each evidence number supports: its title and its sentences."""
    return {e.n: f"{e.hit.chunk.title}. {e.text}" for e in evidence}


def extractive_answer(evidence: Sequence[Evidence], sentences: int) -> list[SentenceCheck]:
    """The best evidence sentences, quoted in document order with their numbers."""
    scored = [(s.score, e.n, s) for e in evidence for s in e.sentences if content_words(s.text)]
    best = sorted(scored, key=lambda item: -item[0])[:sentences]
    ordered = sorted(best, key=lambda item: (item[1], item[2].start))
    return [SentenceCheck(s.text.strip(), (n,), True, "", 1.0) for _, n, s in ordered]


def is_decline(sentence: str) -> bool:
    """Whether the model said the sources do not answer (its trained words, or close)."""
    words = content_words(sentence)
    target = content_words(NOT_IN_SOURCES)
    return bool(words) and sum(w in target for w in words) / len(words) >= 0.8


@dataclass
class _Draft:
    """What the checked stream has produced so far."""

    shown: list[SentenceCheck] = field(default_factory=list)
    dropped: list[SentenceCheck] = field(default_factory=list)
    declined: bool = False
    generated: int = 0
    first_shown: float | None = None
    unsupported_run: int = 0

    def accept(self, check: SentenceCheck) -> bool:
        """Record ``check``; True when it is shown."""
        if check.supported:
            self.shown.append(check)
            self.unsupported_run = 0
            return True
        self.dropped.append(check)
        self.unsupported_run += 1
        return False

    @property
    def stuck(self) -> bool:
        return not self.shown and self.unsupported_run >= MAX_UNSUPPORTED_RUN


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


def dropped_sentence_flags(origin: Origin, dropped: Sequence[SentenceCheck]) -> list[str]:
    """Flags for the model sentences that were not shown: unsupported ones (on a model
    answer; repeats and empty sentences do not count) and repeated instructions."""
    flags: list[str] = []
    if origin == "model" and any(
        c.reason not in ("repeat", "no_content", "too_short") for c in dropped
    ):
        flags.append(Flag.UNSUPPORTED_SENTENCES)
    if any(c.reason == "instruction" for c in dropped):
        flags.append(Flag.INJECTED_INSTRUCTION)
    return flags


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
        self.cache = cache
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
        self.support_config = SupportConfig(
            min_word_share=answers.support_word_share,
            paraphrase_word_share=answers.paraphrase_word_share,
            min_similarity=answers.support_similarity,
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
            if use_cache and self.cache is not None and plain_request:
                key = self._cache_key(question, collection, lease)
                cached = self._cache_get(key)
                if cached is not None:
                    yield from self._replay(cached, collection, lease, started)
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
            if key is not None and self._cacheable(question, answer):
                self._cache_put(key, question, collection, lease, answer)

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
        draft = _Draft()
        generated = _Generated()
        if found.evidence and subject.answerable:
            generated = yield from self._generate(found, history, options, model, draft)
        generated_at = time.perf_counter()

        outcome = self._outcome(found, subject.answerable, draft, flags)
        if outcome.origin == "evidence":
            for check in outcome.shown:
                if draft.first_shown is None:
                    draft.first_shown = time.perf_counter()
                yield PipelineEvent("token", check.render() + " ")
        flags += dropped_sentence_flags(outcome.origin, draft.dropped)
        if outcome.origin == "none":
            text = NOT_IN_SOURCES
            yield PipelineEvent("token", text)
            cited: list[int] = []
        else:
            text = " ".join(c.render() for c in outcome.shown)
            cited = sorted({n for c in outcome.shown for n in c.cited})
        if outcome.origin != "none" and is_degenerate(text):
            flags.append(Flag.DEGENERATE_ANSWER)

        text, disclaimer, spans = yield from self._guard_and_disclaim(
            text, question, found.evidence, found.sources, cited, collection, outcome.origin, flags
        )
        self._observe(draft, started, generated_at)
        self._count(
            "answers",
            {"model": "generated", "evidence": "fallback"}.get(outcome.origin, "abstained"),
        )
        first = draft.first_shown or generated_at
        answer = Answer(
            text=text,
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
            model=model.name,
            model_version_id=lease.version_id,
            disclaimer=disclaimer,
            pii_spans=spans,
            detected_pii=self.detect_pii is not None and outcome.origin != "none",
            origin=outcome.origin,
            question=found.question,
            finish_reason=generated.finish,
            prompt_tokens=generated.prompt_tokens,
            dropped=tuple(c.reason for c in draft.dropped),
            abstain_reason=outcome.abstain_reason,
        )
        yield PipelineEvent("done", answer)
        return answer

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
        draft: _Draft,
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
        for text in self._checked(pieces, evidence_texts(prompt.evidence), draft):
            yield PipelineEvent("token", text)
        return _Generated(prompt_tokens, "length" if draft.generated >= max_tokens else "stop")

    def _outcome(
        self, found: _Found, subject_known: bool, draft: _Draft, flags: list[str]
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

    def _checked(
        self, pieces: Iterator[str], evidence: dict[int, str], draft: _Draft
    ) -> Iterator[str]:
        """The model's supported sentences, each as soon as it is complete and checked.

        An answer's opening is held back until it says something (MIN_ANSWER_WORDS content
        words): "Masters Plans [3]" alone is not an answer to show, and once shown it could
        not be taken back. An answer that never gets there is dropped whole (the reader gets
        the quoted evidence instead).
        """
        splitter = SentenceSplitter()
        held: list[str] = []
        said = 0  # content words of the shown sentences so far

        def release(shown: str) -> Iterator[str]:
            nonlocal said
            said += len(content_words(draft.shown[-1].text))  # the sentence just accepted
            held.append(shown)
            if said >= MIN_ANSWER_WORDS:
                if draft.first_shown is None:
                    draft.first_shown = time.perf_counter()
                yield from held
                held.clear()

        try:
            for piece in pieces:
                draft.generated += 1
                for sentence in splitter.feed(piece):
                    shown = self._check_one(sentence, evidence, draft)
                    if shown is not None:
                        yield from release(shown)
                    if draft.declined or draft.stuck:
                        return
            for sentence in splitter.flush():
                shown = self._check_one(sentence, evidence, draft)
                if shown is not None:
                    yield from release(shown)
            if held:  # too thin to be an answer
                draft.dropped += [
                    SentenceCheck(c.text, (), False, "too_short", c.word_share) for c in draft.shown
                ]
                draft.shown.clear()
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # stops generation at once when the answer is decided early

    def _check_one(self, sentence: str, evidence: dict[int, str], draft: _Draft) -> str | None:
        if not draft.shown and is_decline(sentence):
            draft.declined = True
            return None
        check = check_sentence(sentence, evidence, self.support_config, self.similarity)
        if self._is_instruction(check.text):  # an instruction repeated, supported or not
            check = SentenceCheck(check.text, (), False, "instruction", check.word_share)
        if check.supported and any(
            " ".join(content_words(c.text)) == " ".join(content_words(check.text))
            for c in draft.shown
        ):
            check = SentenceCheck(check.text, (), False, "repeat", check.word_share)
        return check.render() + " " if draft.accept(check) else None

    def _is_instruction(self, text: str) -> bool:
        return self.instruction_check is not None and bool(self.instruction_check([text], None)[0])

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
    ) -> Generator[PipelineEvent, None, tuple[str, str, list[PIISpan]]]:
        """The output guard over the shown text, and the disclaimer of what it draws on."""
        if origin == "none":
            return text, "", []
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
            return final, disclaimer, spans
        return text, disclaimer, spans

    def _observe(self, draft: _Draft, started: float, finished: float) -> None:
        if self.metrics is None or not draft.generated:
            return
        first = draft.first_shown or finished
        self.metrics.ttft.labels(cache="miss").observe(first - started)
        self.metrics.tokens.inc(draft.generated)

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
        # Only the model's own checked answers: flagged ones go to review and may change, a
        # fallback or an abstention may not be what a later model says; questions with
        # personal data are the asker's own business; without a PII detector that cannot
        # be checked.
        if answer.flags or answer.origin != "model" or not answer.sources:
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
                origin="model",
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
                return event.data  # type: ignore[no-any-return]
        raise RuntimeError("the pipeline ended without an answer")
