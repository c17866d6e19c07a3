"""RAG prompts with numbered sources inside the context budget, and citation markers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from assistant.errors import ContextOverflow
from retrieval.types import Hit

SYSTEM_PROMPT = (
    "You answer medical and legal questions using only the numbered sources below. "
    "Cite the source of each statement with its number in square brackets, like [1]. "
    "If the sources do not answer the question, say that you do not know. "
    "Keep the answer short and factual. You are not a substitute for a doctor or a lawyer."
)

# Chat template framing (role markers, separators) that the token count of the parts misses.
TEMPLATE_OVERHEAD_TOKENS = 32

_MARKER = re.compile(r"\[(\d{1,3})\]")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or of to in on for with by is are was were be been it its this that these "
    "those as at from can may might will would should could do does did not no your you their "
    "they them he she his her we our us if then than so such which who what when where how".split()
)


@dataclass(frozen=True)
class Source:
    """A passage as numbered in the prompt."""

    n: int
    hit: Hit
    text: str  # possibly trimmed to fit the budget


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    sources: list[Source]


def build_prompt(
    question: str,
    hits: list[Hit],
    count_tokens: Callable[[str], int],
    context_tokens: int,
    answer_tokens: int,
) -> Prompt:
    """Messages with as many sources as fit; sources are trimmed, the question never is."""
    fixed = count_tokens(SYSTEM_PROMPT) + count_tokens(question) + TEMPLATE_OVERHEAD_TOKENS
    room = context_tokens - answer_tokens - fixed
    if room < 0:
        raise ContextOverflow("the question is too long for the model's context window; shorten it")
    sources: list[Source] = []
    for hit in hits:
        header = f"[{len(sources) + 1}] {hit.chunk.title}\n"
        cost = count_tokens(header) + 2
        if room - cost < 24:
            break
        text = _fit(hit.chunk.text, room - cost, count_tokens)
        if not text:
            break
        room -= cost + count_tokens(text)
        sources.append(Source(n=len(sources) + 1, hit=hit, text=text))
    listing = "\n\n".join(f"[{s.n}] {s.hit.chunk.title}\n{s.text}" for s in sources)
    system = f"{SYSTEM_PROMPT}\n\nSources:\n{listing}" if sources else SYSTEM_PROMPT
    return Prompt(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        sources=sources,
    )


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


def attribute_sentences(answer: str, sources: list[Source], min_overlap: float = 0.3) -> str:
    """Add ``[n]`` after each uncited sentence that a source supports by word overlap.

    Small models rarely write citation markers themselves; this post-hoc attribution keeps
    the answer checkable. A sentence whose content words are mostly absent from every
    source gets no marker, so unsupported claims stay visibly uncited.
    """
    if not sources:
        return answer
    source_words = [(s.n, _content_words(s.text + " " + s.hit.chunk.title)) for s in sources]
    pieces = []
    for match in _SENTENCE.finditer(answer):
        sentence = match.group()
        words = _content_words(sentence)
        if _MARKER.search(sentence) or len(words) < 3:
            pieces.append(sentence)
            continue
        best_n, best = 0, 0.0
        for n, vocabulary in source_words:
            overlap = len(words & vocabulary) / len(words)
            if overlap > best:
                best_n, best = n, overlap
        if best >= min_overlap:
            stripped = sentence.rstrip()
            trailing = sentence[len(stripped) :]
            sentence = f"{stripped} [{best_n}]{trailing}"
        pieces.append(sentence)
    return "".join(pieces)
