"""A finding of personal data: its span in the text, its entity type and confidence."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PIISpan:
    start: int
    end: int
    entity_type: str
    score: float
