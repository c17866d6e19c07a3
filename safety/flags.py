"""Flag rules: which flags open a review item, and which hold the answer until approved."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class Flag(enum.StrEnum):
    """Why an answer is flagged: the product's one vocabulary of flags. Each has a rule of
    the same name in the settings (``safety.flag_rules``: off, warn or hold). Stored as plain
    strings in messages and review items."""

    LOW_RETRIEVAL_CONFIDENCE = "low_retrieval_confidence"
    MISSING_CITATION = "missing_citation"
    INVALID_CITATION = "invalid_citation"
    PII_IN_ANSWER = "pii_in_answer"
    UNCITED_DOSE = "uncited_dose"
    UNCITED_DIAGNOSIS = "uncited_diagnosis"
    UNCITED_LEGAL_CONCLUSION = "uncited_legal_conclusion"
    UNSUPPORTED_SENTENCES = "unsupported_sentences"
    FALLBACK_ANSWER = "fallback_answer"
    INJECTED_INSTRUCTION = "injected_instruction"
    DEGENERATE_ANSWER = "degenerate_answer"
    MODEL_DECLINED = "model_declined"
    # The input guard answered instead of the model; its flags are ``guard:<action>`` and
    # ``guard:<rule hit>``, all under this one rule.
    INPUT_GUARD = "input_guard"
    THUMBS_DOWN = "thumbs_down"


GUARD_PREFIX = "guard:"


def guard_flag(name: str) -> str:
    """The flag of an input-guard action or rule hit (``guard:block``)."""
    return f"{GUARD_PREFIX}{name}"


def is_guard_flag(flag: str) -> bool:
    return str(flag).startswith(GUARD_PREFIX)


def rule_of(flag: str) -> str:
    """The name of the rule that decides ``flag``."""
    return Flag.INPUT_GUARD.value if is_guard_flag(flag) else str(flag)


# Flags that only exist once the answer is written: if any of their rules holds, the answer
# must be buffered instead of streamed, so that nothing is shown before the decision.
POST_GENERATION_RULES = tuple(
    flag for flag in Flag if flag not in (Flag.INPUT_GUARD, Flag.THUMBS_DOWN)
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
