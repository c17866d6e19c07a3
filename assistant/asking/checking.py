"""Checking the model's answer as it streams: each sentence against the evidence it cites
(``safety.grounding``), shown only when supported; the quoted-evidence fallback; the flags
for what was not shown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from assistant.asking.answer import Origin
from retrieval.evidence import Evidence, InstructionCheck
from safety.flags import Flag
from safety.grounding import (
    MIN_ANSWER_WORDS,
    SentenceCheck,
    SentenceSplitter,
    SupportConfig,
    check_sentence,
    content_words,
)
from training.prompt_format import NOT_IN_SOURCES

# Unshown sentences in a row, with nothing shown yet, after which the model is stopped: it
# is not writing from the evidence, and the quoted evidence will be shown instead.
MAX_UNSUPPORTED_RUN = 3


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
class Draft:
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


class SentenceChecker:
    """Turns the model's token stream into checked sentences (``stream``), recording in a
    ``Draft`` what was shown and what was dropped, and why."""

    def __init__(
        self,
        support: SupportConfig,
        similarity: Callable[[str, str], float],
        instruction_check: InstructionCheck | None,
    ) -> None:
        self.support = support
        self.similarity = similarity
        # Documents and answers are data: a sentence that speaks to the assistant is never shown.
        self.instruction_check = instruction_check

    def stream(
        self, pieces: Iterator[str], evidence: dict[int, str], draft: Draft
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
                    shown = self.check_one(sentence, evidence, draft)
                    if shown is not None:
                        yield from release(shown)
                    if draft.declined or draft.stuck:
                        return
            for sentence in splitter.flush():
                shown = self.check_one(sentence, evidence, draft)
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

    def check_one(self, sentence: str, evidence: dict[int, str], draft: Draft) -> str | None:
        if not draft.shown and is_decline(sentence):
            draft.declined = True
            return None
        check = check_sentence(sentence, evidence, self.support, self.similarity)
        if self.is_instruction(check.text):  # an instruction repeated, supported or not
            check = SentenceCheck(check.text, (), False, "instruction", check.word_share)
        if check.supported and any(
            " ".join(content_words(c.text)) == " ".join(content_words(check.text))
            for c in draft.shown
        ):
            check = SentenceCheck(check.text, (), False, "repeat", check.word_share)
        return check.render() + " " if draft.accept(check) else None

    def is_instruction(self, text: str) -> bool:
        return self.instruction_check is not None and bool(self.instruction_check([text], None)[0])
