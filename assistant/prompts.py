"""RAG prompts with numbered sources inside the context budget, and citation markers.

The system prompt is the same for every turn and comes first, and the sources follow in the
user message: llama.cpp keeps the tokens of the previous prompt, so each turn reads only
from the first token that differs (its sources and question), never the instructions again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from assistant.errors import ContextOverflow
from retrieval.types import Hit

SYSTEM_PROMPT = (
    "You answer medical and legal questions using only the numbered sources given with the "
    "question. Cite the source of each statement with its number in square brackets, like [1]. "
    "If the sources do not answer the question, say that you do not know. "
    "Keep the answer short and factual. You are not a substitute for a doctor or a lawyer."
)

# Chat template framing (role markers, separators) that the token count of the parts misses.
TEMPLATE_OVERHEAD_TOKENS = 32
# A compacted passage keeps at least this many sentences (the first ones when nothing matches).
MIN_SENTENCES = 2

_MARKER = re.compile(r"\[(\d{1,3})\]")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or of to in on for with by is are was were be been it its this that these "
    "those as at from can may might will would should could do does did not no your you their "
    "they them he she his her we our us if then than so such which who what when where how "
    "about also have has had more most other some any each there here into over under very "
    "i me my".split()
)


@dataclass(frozen=True)
class Source:
    """A passage as numbered in the prompt; ``start``/``end`` index the document text."""

    n: int
    hit: Hit
    text: str  # what the model sees: possibly compacted or trimmed to fit the budget
    start: int = -1
    end: int = -1

    @property
    def span(self) -> tuple[int, int]:
        """The document span this source covers (the whole chunk when not given)."""
        if self.start < 0:
            return self.hit.chunk.start, self.hit.chunk.start + len(self.text)
        return self.start, self.end


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    sources: list[Source]


def user_message(question: str, sources: list[Source]) -> str:
    if not sources:
        return question
    listing = "\n\n".join(f"[{s.n}] {s.hit.chunk.title}\n{s.text}" for s in sources)
    return f"Sources:\n{listing}\n\nQuestion: {question}"


def build_prompt(
    question: str,
    hits: list[Hit],
    count_tokens: Callable[[str], int],
    context_tokens: int,
    answer_tokens: int,
    compact: bool = False,
) -> Prompt:
    """Messages with as many sources as fit; sources are trimmed, the question never is.

    ``compact``: each passage is cut down to the sentences that share words with the
    question (with their neighbours), which shortens the prompt the model must read.
    """
    fixed = (
        count_tokens(SYSTEM_PROMPT)
        + count_tokens(f"Sources:\n\nQuestion: {question}")
        + TEMPLATE_OVERHEAD_TOKENS
    )
    room = context_tokens - answer_tokens - fixed
    if room < 0:
        raise ContextOverflow("the question is too long for the model's context window; shorten it")
    sources: list[Source] = []
    for hit in hits:
        header = f"[{len(sources) + 1}] {hit.chunk.title}\n"
        cost = count_tokens(header) + 2
        if room - cost < 24:
            break
        chunk = hit.chunk
        offset, end = 0, len(chunk.text)
        text = chunk.text
        if compact:
            offset, end, text = compact_passage(chunk.text, question)
        fitted = _fit(text, room - cost, count_tokens)
        if not fitted:
            break
        if fitted != text:  # trimmed at the end
            end = offset + len(fitted) if not compact else end
        room -= cost + count_tokens(fitted)
        sources.append(
            Source(
                n=len(sources) + 1,
                hit=hit,
                text=fitted,
                start=chunk.start + offset,
                end=min(chunk.start + end, chunk.end),
            )
        )
    return Prompt(
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_message(question, sources)},
        ],
        sources=sources,
    )


def compact_passage(text: str, question: str, keep: int = 4) -> tuple[int, int, str]:
    """The sentences of ``text`` that matter to ``question``: (start, end, compacted text).

    Sentences are scored by the question's content words they contain (rarer words in the
    passage weigh more); the best ``keep`` are kept with their order, each with the sentence
    before it when that one is short context ("It is caused by ..."). Gaps become " ... ".
    The span covers the first to the last kept sentence.
    """
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group().strip()]
    if len(spans) <= keep:
        return 0, len(text), text
    asked = _stems(question)
    sentence_stems = [_stems(text[a:b]) for a, b in spans]
    document_frequency: dict[str, int] = {}
    for stems in sentence_stems:
        for stem in stems:
            document_frequency[stem] = document_frequency.get(stem, 0) + 1
    scores = [
        sum(math.log(1 + len(spans) / document_frequency[s]) for s in stems & asked)
        for stems in sentence_stems
    ]
    ranked = sorted(range(len(spans)), key=lambda i: (-scores[i], i))
    chosen = {i for i in ranked[:keep] if scores[i] > 0}
    if len(chosen) < MIN_SENTENCES:
        chosen |= set(range(MIN_SENTENCES))
    pieces: list[str] = []
    previous = -2
    for i in sorted(chosen):
        if pieces and i != previous + 1:
            pieces.append(" ... ")
        elif pieces:
            pieces.append(" ")
        a, b = spans[i]
        pieces.append(text[a:b].strip())
        previous = i
    first, last = min(chosen), max(chosen)
    return spans[first][0], spans[last][1], "".join(pieces)


def _fit(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """``text`` cut at a sentence (else word) boundary to at most ``budget`` tokens."""
    if count_tokens(text) <= budget:
        return text
    # Binary search on characters, then back off to the last sentence end.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    cut = text[:low]
    sentence_end = max(cut.rfind(". "), cut.rfind(".\n"))
    if sentence_end > len(cut) // 2:
        return cut[: sentence_end + 1]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def cited_numbers(answer: str) -> list[int]:
    """The source numbers the answer cites, in order of first mention."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        n = int(match.group(1))
        if n not in seen:
            seen.append(n)
    return seen


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def _stems(text: str) -> set[str]:
    """Content words cut to 6 letters: "treated"/"treatment", "infections"/"infection" meet."""
    return {w[:6] for w in _content_words(text)}


def attribute_sentences(
    answer: str, sources: list[Source], min_support: float = 0.5, min_words: int = 3
) -> str:
    """Add ``[n]`` after each uncited sentence that one source clearly supports.

    Small models rarely write citation markers themselves; this post-hoc attribution keeps
    the answer checkable. A sentence is attributed only when at least ``min_support`` of its
    content words (weighted by how specific they are: a word every source shares counts
    little) and at least ``min_words`` of them are in one source. Between sources that support
    it about equally, the better-ranked source wins. Unsupported sentences stay uncited.
    """
    if not sources:
        return answer
    vocabularies = [(s.n, _stems(s.text + " " + s.hit.chunk.title)) for s in sources]
    pieces = []
    for match in _SENTENCE.finditer(answer):
        sentence = match.group()
        stems = _stems(sentence)
        if _MARKER.search(sentence) or len(stems) < min_words:
            pieces.append(sentence)
            continue
        # A stem found in every source says little about which one supports the sentence.
        weight = {
            stem: 1.0 / (1 + sum(stem in vocabulary for _, vocabulary in vocabularies))
            for stem in stems
        }
        total = sum(weight.values())
        best_n, best = 0, 0.0
        for n, vocabulary in vocabularies:  # in rank order: ties go to the better-ranked
            shared = stems & vocabulary
            support = sum(weight[s] for s in shared) / total if total else 0.0
            enough = len(shared) >= min_words and len(shared) / len(stems) >= min_support
            if enough and support > best + 1e-9:
                best_n, best = n, support
        if best_n:
            stripped = sentence.rstrip()
            trailing = sentence[len(stripped) :]
            sentence = f"{stripped} [{best_n}]{trailing}"
        pieces.append(sentence)
    return "".join(pieces)
