"""Checks on what users send before any work is done on it."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class GuardVerdict:
    allowed: bool
    reason: str = ""
    message: str = ""


def normalise_question(text: str) -> str:
    """NFC, control characters removed (newlines and tabs kept), surrounding space stripped."""
    text = unicodedata.normalize("NFC", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()


def check_question(text: str, max_chars: int) -> GuardVerdict:
    """Size checks; issue-level guards (injection, scope, emergencies) build on this."""
    if not text:
        return GuardVerdict(False, "empty", "Please type a question.")
    if len(text) > max_chars:
        return GuardVerdict(
            False,
            "too_long",
            f"The question is {len(text)} characters long; the limit is "
            f"{max_chars}. Please shorten it.",
        )
    return GuardVerdict(True)
