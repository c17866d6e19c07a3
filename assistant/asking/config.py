"""The answer path's settings (``answers.*``): the evidence the model reads, the check before
anything is shown, the fallback and the decline."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnswerSettings(BaseModel):
    """Grounded answers: the evidence the model reads, and the check before anything is shown."""

    model_config = ConfigDict(frozen=True)  # read once, never assigned

    evidence_budget_tokens: int = Field(
        default=320,
        ge=32,
        le=4096,
        description="Model tokens of evidence sentences in the prompt (titles excluded). More "
        "evidence lets answers copy more of the right section, at ~1.5 ms a token of prompt "
        "reading on 2 cores before the first word.",
    )
    evidence_sources: int = Field(
        default=4, ge=1, le=20, description="Retrieved passages that may give evidence sentences."
    )
    evidence_aspect_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Weight, in a sentence's similarity, of the question without its subject "
        "(what it asks about it) against the whole question.",
    )
    support_word_share: float = Field(
        default=0.7,
        gt=0,
        le=1,
        description="Share of a sentence's content words that its cited evidence must contain "
        "for the sentence to count as supported.",
    )
    paraphrase_word_share: float = Field(
        default=0.45,
        gt=0,
        le=1,
        description="Lower word share accepted when the sentence's meaning is close to one "
        "evidence sentence (embedding cosine >= support_similarity).",
    )
    support_similarity: float = Field(
        default=0.8, gt=0, le=1, description="Cosine at which a reworded sentence is supported."
    )
    fallback_sentences: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Evidence sentences quoted when the model's answer cannot be shown.",
    )
    decline_override_score: float = Field(
        default=0.55,
        ge=0,
        le=1.01,
        description="Best passage similarity at which a model's 'the sources do not answer' is "
        "overridden by quoted evidence (flagged for review): the page found is very likely the "
        "one asked about. Above 1: never.",
    )
