"""Split documents into passages that follow their structure and fit the embedding window.

Units are sentences (or list items, or lines) with exact character offsets; units are packed
into chunks up to a word-piece budget, a new section starts a new chunk, and the last
sentences of a chunk are repeated at the start of the next so an answer spanning a
boundary is still found whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.types import Chunk, Document

TokenCounter = Callable[[Sequence[str]], list[int]]

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before
# whitespace; a line break also ends a unit. Decimal points and "e.g." mid-sentence
# rarely matter for chunk boundaries, so the rule stays simple.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Unit:
    start: int
    end: int
    new_section: bool  # the unit starts after a blank line or is a heading


def split_units(text: str) -> list[Unit]:
    """Sentences and lines of ``text`` as spans, whitespace trimmed."""
    units: list[Unit] = []
    position = 0
    blank_before = True
    for match in _SENTENCE_END.finditer(text):
        _append_unit(units, text, position, match.start(), blank_before)
        blank_before = match.group().count("\n") >= 2
        position = match.end()
    _append_unit(units, text, position, len(text), blank_before)
    return units


def _append_unit(units: list[Unit], text: str, start: int, end: int, blank_before: bool) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        units.append(Unit(start, end, blank_before or _looks_like_heading(text[start:end])))


def _looks_like_heading(unit: str) -> bool:
    return (
        len(unit) < 80
        and not unit.endswith((".", "?", "!", ":", ";", ","))
        and (unit.startswith("#") or unit.istitle() or unit.isupper())
    )


def _split_long_unit(text: str, unit: Unit, budget: int, count: TokenCounter) -> list[Unit]:
    """Cut a unit longer than the budget at word boundaries into pieces that fit."""
    words = [
        (m.start() + unit.start, m.end() + unit.start)
        for m in _WORD.finditer(text[unit.start : unit.end])
    ]
    counts = count([text[s:e] for s, e in words])
    pieces: list[Unit] = []
    piece_start, used = words[0][0], 0
    previous_end = words[0][0]
    for (start, end), n in zip(words, counts, strict=True):
        if used and used + n > budget:
            pieces.append(Unit(piece_start, previous_end, not pieces and unit.new_section))
            piece_start, used = start, 0
        used += n
        previous_end = end
    pieces.append(Unit(piece_start, previous_end, not pieces and unit.new_section))
    return pieces


def chunk_document(
    document: Document,
    count_tokens: TokenCounter,
    budget: int,
    overlap_sentences: int = 1,
    section_fill: float = 0.4,
) -> list[Chunk]:
    """Chunks of ``document``; ``budget`` counts word pieces of the title and the passage.

    A new section closes the chunk being filled once it holds ``section_fill`` of the room.
    """
    text = document.text
    title_tokens = count_tokens([document.title])[0] + 2  # title + separator
    room = max(16, budget - title_tokens)
    units = split_units(text)
    if not units:
        return []
    sizes = count_tokens([text[u.start : u.end] for u in units])
    fitted: list[tuple[Unit, int]] = []
    for unit, size in zip(units, sizes, strict=True):
        if size <= room:
            fitted.append((unit, size))
        else:
            pieces = _split_long_unit(text, unit, room, count_tokens)
            piece_sizes = count_tokens([text[p.start : p.end] for p in pieces])
            fitted.extend(zip(pieces, piece_sizes, strict=True))

    groups: list[list[tuple[Unit, int]]] = []
    current: list[tuple[Unit, int]] = []
    used = 0
    for unit, size in fitted:
        # A new section closes a chunk that is already reasonably full, so that
        # passages follow the document's structure instead of straddling sections.
        section_break = unit.new_section and used >= room * section_fill
        if current and (used + size > room or section_break):
            groups.append(current)
            carried = current[-overlap_sentences:] if overlap_sentences else []
            carried_size = sum(s for _, s in carried)
            if section_break or carried_size + size > room or carried_size > room // 2:
                carried, carried_size = [], 0
            current, used = list(carried), carried_size
        current.append((unit, size))
        used += size
    if current:
        groups.append(current)

    return [
        Chunk(
            doc_id=document.doc_id,
            title=document.title,
            collection=document.collection,
            source_url=document.source_url,
            start=group[0][0].start,
            end=group[-1][0].end,
            text=text[group[0][0].start : group[-1][0].end],
            aliases=document.aliases,
        )
        for group in groups
    ]


def embedding_text(chunk: Chunk) -> str:
    """What the embedding model sees: the title gives the passage its subject."""
    return f"{chunk.title}\n{chunk.text}"
