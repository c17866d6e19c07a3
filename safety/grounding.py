"""The check before an answer is shown: is each sentence supported by the evidence it cites?

A sentence is supported by one numbered evidence text when

- every number in it (doses, dates, amounts, percentages, section numbers) appears in that
  evidence: a number is never right "approximately";
- most of its content words are there (``min_word_share``), or fewer of them are but its
  meaning is close to one evidence sentence (``paraphrase_word_share`` and an embedding
  cosine of at least ``min_similarity``, when an embedding is given);
- it does not say "not" where the evidence sentence it matches says the opposite, or drop
  the "not" that the evidence has.

A sentence citing the wrong number is re-cited to the evidence that supports it; a sentence
that no evidence supports is not shown. Everything here works on plain strings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

MARKER = re.compile(r"\s*\[(\d{1,3})\]")
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot|without)\b|n't\b", re.I)
_STOP = frozenset(
    "a an the and or of to in on for with by is are was were be been being it its this that "
    "these those as at from can may might will would should could do does did your you their "
    "they them he she his her we our us if then than so such which who whom what when where "
    "why how about also have has had more most other some any each there here into over under "
    "very i me my yes".split()
)
# Abbreviations whose period does not end a sentence (contracts are full of "Inc.").
_ABBREVIATIONS = frozenset(
    "e.g i.e etc dr mr mrs ms st vs no inc ltd co corp jr sr u.s approx fig sec art".split()
)
# What an empty or stuck model writes: "The answer is:", "The answer is: 1".
_DEGENERATE = re.compile(r"^\W*(?:the\s+)?answer\s+is\W*\w{0,3}\W*$", re.I)

# A sentence's cosine similarity with a text; None when no embedding is at hand.
Similarity = Callable[[str, str], float]


@dataclass(frozen=True)
class SupportConfig:
    min_word_share: float = 0.7
    paraphrase_word_share: float = 0.45
    min_similarity: float = 0.8

    def __post_init__(self) -> None:
        for name in ("min_word_share", "paraphrase_word_share", "min_similarity"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1]")


@dataclass(frozen=True)
class SentenceCheck:
    """One answer sentence after the check."""

    text: str  # the sentence without its markers
    cited: tuple[int, ...]  # the evidence numbers that support it (re-cited where needed)
    supported: bool
    reason: str  # why not: "no_content", "numbers", "negation", "words", "repeat"; "" if shown
    word_share: float

    def render(self) -> str:
        """The sentence as shown, with its evidence numbers."""
        markers = "".join(f" [{n}]" for n in self.cited)
        return f"{self.text}{markers}"


def content_words(text: str) -> list[str]:
    """Lower-case words that carry content, cut to 6 letters as a light stem."""
    return [w[:6] for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


def numbers_in(text: str) -> set[str]:
    """The numbers of ``text``, separators dropped ("25,000" and "25000" are one number)."""
    return {re.sub(r"[.,]", "", n) if "," in n else n for n in _NUMBER.findall(text)}


def split_cited(sentence: str) -> tuple[str, tuple[int, ...]]:
    """(text without markers, the numbers it cites in order)."""
    numbers: list[int] = []
    for match in MARKER.finditer(sentence):
        n = int(match.group(1))
        if n not in numbers:
            numbers.append(n)
    text = MARKER.sub("", sentence).strip()
    return text, tuple(numbers)


# Content words an answer needs to say anything at all.
MIN_ANSWER_WORDS = 3


def is_degenerate(text: str) -> bool:
    """An answer with nothing to read: empty, a stub like "The answer is: 1", or under
    MIN_ANSWER_WORDS content words in all."""
    plain = MARKER.sub("", text).strip()
    return (
        not plain or bool(_DEGENERATE.match(plain)) or len(content_words(plain)) < MIN_ANSWER_WORDS
    )


class SentenceSplitter:
    """Cuts a stream of answer text into whole sentences, each with its trailing markers.

    A sentence is complete once the next one has begun (its markers may follow the period:
    "... glucose. [1] Over time ..."), or at a line break, or when the text ends.
    """

    _BOUNDARY = re.compile(r"(?<=[.!?])((?:\s*\[\d{1,3}\])*)\s+(?=[^\s\[])|\n+")

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        out: list[str] = []
        position = 0
        for match in self._BOUNDARY.finditer(self._buffer):
            end = match.start() + len(match.group(1) or "")
            candidate = self._buffer[position:end]
            if match.group(0).startswith("\n") or not _ends_with_abbreviation(candidate):
                if candidate.strip():
                    out.append(candidate.strip())
                position = match.end()
        self._buffer = self._buffer[position:]
        return out

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


def _ends_with_abbreviation(text: str) -> bool:
    plain = MARKER.sub("", text).rstrip()
    if not plain.endswith("."):
        return False
    last = plain[:-1].rsplit(None, 1)[-1].lower() if plain[:-1].split() else ""
    return last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha())


def split_sentences(answer: str) -> list[str]:
    splitter = SentenceSplitter()
    return splitter.feed(answer) + splitter.flush()


def _evidence_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\s+\.\.\.\s+|\n+", text) if s.strip()]


def support_of(
    sentence: str,
    evidence: str,
    config: SupportConfig,
    similarity: Similarity | None = None,
) -> tuple[bool, str, float]:
    """(supported, reason if not, word share) of ``sentence`` (no markers) by ``evidence``."""
    words = content_words(sentence)
    if not words:
        return False, "no_content", 0.0
    known = set(content_words(evidence))
    share = sum(w in known for w in words) / len(words)
    if not numbers_in(sentence) <= numbers_in(evidence):
        return False, "numbers", share
    best = _closest_sentence(words, evidence)
    if bool(_NEGATION.search(sentence)) != bool(_NEGATION.search(best)):
        return False, "negation", share
    if share >= config.min_word_share:
        return True, "", share
    if (
        similarity is not None
        and share >= config.paraphrase_word_share
        and similarity(sentence, best) >= config.min_similarity
    ):
        return True, "", share
    return False, "words", share


def _closest_sentence(words: Sequence[str], evidence: str) -> str:
    """The evidence sentence sharing most content words with ``words``."""
    wanted = set(words)
    best, best_shared = "", -1
    for candidate in _evidence_sentences(evidence):
        shared = len(wanted & set(content_words(candidate)))
        if shared > best_shared:
            best, best_shared = candidate, shared
    return best


def check_sentence(
    sentence: str,
    evidence: Mapping[int, str],
    config: SupportConfig,
    similarity: Similarity | None = None,
) -> SentenceCheck:
    """Check one sentence against the evidence it cites, then against the rest.

    The cited evidence is tried first; when it does not support the sentence, the other
    evidence texts are tried in order, and the first that supports it is cited instead.
    """
    text, cited = split_cited(sentence)
    valid = [n for n in cited if n in evidence]
    tried: list[int] = valid + [n for n in evidence if n not in valid]
    first_reason, first_share = "words", 0.0
    for position, n in enumerate(tried):
        ok, reason, share = support_of(text, evidence[n], config, similarity)
        if position == 0:
            first_reason, first_share = reason, share
        if ok:
            return SentenceCheck(text, (n,), True, "", share)
        if reason == "no_content":
            break
    return SentenceCheck(text, (), False, first_reason, first_share)


def check_answer(
    sentences: Sequence[str],
    evidence: Mapping[int, str],
    config: SupportConfig,
    similarity: Similarity | None = None,
) -> Iterator[SentenceCheck]:
    """Each sentence checked; a sentence repeating an earlier one is never shown twice."""
    seen: set[str] = set()
    for sentence in sentences:
        check = check_sentence(sentence, evidence, config, similarity)
        key = " ".join(content_words(check.text))
        if check.supported and key in seen:
            check = SentenceCheck(check.text, (), False, "repeat", check.word_share)
        seen.add(key)
        yield check
