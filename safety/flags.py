"""Flag rules: which flags open a review item, and which hold the answer until approved."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Flags that only exist once the answer is written: if any of their rules holds, the answer
# must be buffered instead of streamed, so that nothing is shown before the decision.
POST_GENERATION_RULES = (
    "low_retrieval_confidence",
    "missing_citation",
    "invalid_citation",
    "pii_in_answer",
    "uncited_dose",
    "uncited_diagnosis",
    "uncited_legal_conclusion",
    "unsupported_sentences",
    "fallback_answer",
    "injected_instruction",
    "degenerate_answer",
)


@dataclass(frozen=True)
class FlagDecision:
    reasons: list[str]  # the flags whose rule is not off: the review item's reasons
    held: bool  # some rule says hold: the answer waits for a reviewer

    @property
    def review(self) -> bool:
        return bool(self.reasons)


def decide(flags: Iterable[str], policy: Callable[[str], str]) -> FlagDecision:
    """Apply each flag's rule (``policy(flag)`` is off, warn or hold)."""
    reasons = [f for f in dict.fromkeys(flags) if policy(f) != "off"]
    return FlagDecision(reasons, any(policy(f) == "hold" for f in reasons))


def may_hold_after_generation(policy: Callable[[str], str]) -> bool:
    return any(policy(rule) == "hold" for rule in POST_GENERATION_RULES)
