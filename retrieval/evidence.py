"""Evidence selection: the sentences of the retrieved passages that answer the question.

A small model reads a short prompt better than a long one, and copies what it is given: so
it is given the few sentences that matter, numbered by passage, instead of whole passages.
Each sentence of the top passages is scored by

- its meaning: cosine of its embedding with the question's (the retrieval's own model);
- its words: the question's content words it contains, rarer ones weighing more;
- its passage: the passage's fused retrieval score, relative to the best one;

and sentences are taken best first, neighbours of a taken sentence gaining a little (an
answer is usually a run of sentences, and a sentence read alone can lose its subject),
until the token budget is spent. The result keeps every sentence's exact offsets in its
document, so a citation of an evidence number points at exactly what the model read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.embedding import Embedder
from retrieval.types import Hit

# Which of these sentences (texts, and their embeddings) speak to the assistant: a mask.
InstructionCheck = Callable[[Sequence[str], "np.ndarray | None"], np.ndarray]

# Sentence ends: . ! ? (with closing quotes/brackets) before a space and what starts a
# sentence, or a line break. Lines of a list stay whole ("- Surgery - Radiation therapy").
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9-])|\n+")
# A long sentence (contract clauses run to hundreds of words) is cut at its clause marks.
_CONJUNCTION = re.compile(r"(?:and|or|but|provided|including)\b")
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    "a an the and or of to in on for with by is are was were be been being it its this that "
    "these those as at from can may might will would should could do does did not no your you "
    "their they them he she his her we our us if then than so such which who whom what when "
    "where why how about also have has had more most other some any each there here into over "
    "under very i me my am get got there's what's tell know please much many".split()
)


@dataclass(frozen=True)
class EvidenceConfig:
    """How evidence is chosen; the defaults were measured on the dev split's training half."""

    budget_tokens: int = 300  # the model's tokens for all evidence text, titles excluded
    max_sources: int = 4  # passages that may contribute sentences
    max_sentence_words: int = 60  # longer sentences are cut at clause marks
    meaning_weight: float = 0.55
    words_weight: float = 0.25
    passage_weight: float = 0.2
    neighbour_bonus: float = 0.08  # added to the sentences next to a taken one
    min_score: float = 0.15  # a sentence below this is never evidence
    aspect_share: float = 0.5  # weight of the question without its subject, in meaning

    def __post_init__(self) -> None:
        checks = [
            (16 <= self.budget_tokens <= 4096, "budget_tokens must be in [16, 4096]"),
            (1 <= self.max_sources <= 20, "max_sources must be in [1, 20]"),
            (8 <= self.max_sentence_words <= 400, "max_sentence_words must be in [8, 400]"),
            (self.meaning_weight >= 0 and self.words_weight >= 0, "weights must be >= 0"),
            (self.passage_weight >= 0 and self.neighbour_bonus >= 0, "weights must be >= 0"),
            (-1 <= self.min_score <= 1, "min_score must be in [-1, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a passage; ``start``/``end`` index the document text."""

    start: int
    end: int
    text: str
    score: float = 0.0


@dataclass(frozen=True)
class Evidence:
    """What one numbered source gives the model: some sentences of one passage."""

    n: int
    hit: Hit
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        """The sentences in document order; " ... " where the passage skips some."""
        pieces: list[str] = []
        previous_end = -1
        for sentence in self.sentences:
            if pieces:
                gap = self.hit.chunk.text[
                    previous_end - self.hit.chunk.start : sentence.start - self.hit.chunk.start
                ]
                pieces.append(" " if not gap.strip() else " ... ")
            pieces.append(sentence.text)
            previous_end = sentence.end
        return "".join(pieces)

    @property
    def start(self) -> int:
        return self.sentences[0].start

    @property
    def end(self) -> int:
        return self.sentences[-1].end

    @property
    def best_score(self) -> float:
        return max(s.score for s in self.sentences)


def split_sentences(text: str, max_words: int = 60) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, stripped, long ones cut at clause marks."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _SENTENCE_END.finditer(text):
        spans.extend(_clauses(text, position, match.start(), max_words))
        position = match.end()
    spans.extend(_clauses(text, position, len(text), max_words))
    return spans


def _clauses(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """The stripped span, or pieces of at most ``max_words`` words when it is longer, cut
    after a clause mark (; : or a comma before and/or) where there is one."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start >= end:
        return []
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    if len(words) <= max_words:
        return [(start, end)]
    pieces: list[tuple[int, int]] = []
    first = 0  # index of the first word of the current piece
    last_break: int | None = None  # index of the word after the last clause mark
    for i, (a, b) in enumerate(words):
        if i - first >= max_words:
            cut = last_break if last_break is not None and last_break > first else i
            pieces.append((words[first][0], words[cut - 1][1]))
            first, last_break = cut, None
        if text[a:b] == "-" and i > first:  # a list item starts: cut before its dash
            last_break = i
        elif text[b - 1] in ";:" or (
            text[b - 1] == "," and i + 1 < len(words) and _CONJUNCTION.match(text, words[i + 1][0])
        ):
            last_break = i + 1
    pieces.append((words[first][0], words[-1][1]))
    return pieces


def content_words(text: str) -> list[str]:
    """Lower-case words of ``text`` that carry content, cut to 6 letters as a light stem."""
    return [w[:6] for w in _WORD.findall(text.lower()) if w not in STOP_WORDS and len(w) > 1]


def select_evidence(
    question: str,
    hits: Sequence[Hit],
    embedder: Embedder,
    count_tokens: Callable[[str], int],
    config: EvidenceConfig | None = None,
    question_vector: np.ndarray | None = None,
    is_instruction: InstructionCheck | None = None,
) -> list[Evidence]:
    """The evidence for ``question`` from ``hits`` (in rank order), numbered from 1.

    Sources keep the retrieval's order; a passage that gives no sentence is left out and
    the numbers stay consecutive. ``is_instruction`` marks sentences that address the
    assistant (an ingested page saying "ignore your instructions"): documents are data, and
    such sentences are never evidence.
    """
    config = config or EvidenceConfig()
    hits = list(hits)[: config.max_sources]
    candidates: list[tuple[int, Sentence]] = []  # (hit index, sentence)
    for h, hit in enumerate(hits):
        chunk = hit.chunk
        for a, b in split_sentences(chunk.text, config.max_sentence_words):
            candidates.append((h, Sentence(chunk.start + a, chunk.start + b, chunk.text[a:b])))
    if not candidates:
        return []
    scores, vectors = _scores(question, hits, candidates, embedder, config, question_vector)
    if is_instruction is not None:
        banned = is_instruction([s.text for _, s in candidates], vectors)
        scores = np.where(banned, -np.inf, scores)
    chosen = _choose(candidates, scores, count_tokens, config)
    evidence: list[Evidence] = []
    for h, hit in enumerate(hits):
        picked = tuple(
            Sentence(s.start, s.end, s.text, round(float(scores[i]), 4))
            for i, (owner, s) in enumerate(candidates)
            if owner == h and i in chosen
        )
        if picked:
            evidence.append(Evidence(len(evidence) + 1, hit, picked))
    return evidence


def _scores(
    question: str,
    hits: Sequence[Hit],
    candidates: Sequence[tuple[int, Sentence]],
    embedder: Embedder,
    config: EvidenceConfig,
    question_vector: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    texts = [s.text for _, s in candidates]
    vectors = embedder.encode(texts)
    query = question_vector if question_vector is not None else embedder.encode_query(question)
    meaning = _cosines(vectors, query)
    aspect = aspect_of(question, [h.chunk.title for h in hits])
    if config.aspect_share > 0 and aspect and aspect != question:
        # Every sentence of the right page names its subject; what sets the answer apart is
        # what the question asks about it ("symptoms", "governing law").
        meaning = (1 - config.aspect_share) * meaning + config.aspect_share * _cosines(
            vectors, embedder.encode_query(aspect)
        )
    words = _word_scores(aspect or question, texts)
    best = max(h.score for h in hits) or 1.0
    passage = np.array([hits[h].score / best if best > 0 else 0.0 for h, _ in candidates])
    combined = (
        config.meaning_weight * meaning
        + config.words_weight * words
        + config.passage_weight * passage
    )
    return combined, vectors


def _cosines(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1) * max(float(np.linalg.norm(query)), 1e-9)
    return (vectors @ query) / (norms + 1e-9)


_SUBJECT_PREFIX = re.compile(r"^\s*(?:in|under|for|regarding)\s+the\s+[^:?]{3,300}:\s*", re.I)


def aspect_of(question: str, titles: Sequence[str]) -> str:
    """What the question asks about its subject: without a leading "In the <contract>: "
    and without the words of the passages' titles. Empty when nothing is left."""
    text = _SUBJECT_PREFIX.sub("", question)
    title_words = {w for t in titles for w in content_words(t)}
    kept = [w for w in re.findall(r"\S+", text) if not set(content_words(w)) & title_words]
    rest = " ".join(kept)
    return rest if content_words(rest) else ""


def _word_scores(question: str, texts: Sequence[str]) -> np.ndarray:
    """Share of the question's content words (idf-weighted over ``texts``) in each text."""
    asked = set(content_words(question))
    if not asked:
        return np.zeros(len(texts))
    bags = [set(content_words(t)) for t in texts]
    n = len(texts)
    weight = {w: math.log(1 + n / (1 + sum(w in bag for bag in bags))) for w in asked}
    total = sum(weight.values()) or 1.0
    return np.array([sum(weight[w] for w in asked & bag) / total for bag in bags])


def _choose(
    candidates: Sequence[tuple[int, Sentence]],
    scores: np.ndarray,
    count_tokens: Callable[[str], int],
    config: EvidenceConfig,
) -> set[int]:
    """Indices of the sentences taken, best first with the neighbour bonus, within budget."""
    boosted = scores.astype(float).copy()
    chosen: set[int] = set()
    spent = 0
    costs = [count_tokens(s.text) + 1 for _, s in candidates]
    while True:
        order = [i for i in np.argsort(-boosted) if i not in chosen]
        taken = False
        for i in order:
            if not np.isfinite(scores[i]):  # never evidence (an instruction to the assistant)
                continue
            if scores[i] < config.min_score and chosen:
                return chosen
            if spent + costs[i] > config.budget_tokens:
                continue
            chosen.add(int(i))
            spent += costs[i]
            for j in (i - 1, i + 1):
                if 0 <= j < len(candidates) and candidates[j][0] == candidates[i][0]:
                    boosted[j] += config.neighbour_bonus
            taken = True
            break
        if not taken:
            return chosen
