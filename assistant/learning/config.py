"""The learning loop's settings (``learning.*``): datasets, training defaults, the gate's
tolerances, rollout and the schedule's period."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from training.config import BOUNDS, MAX_LEARNING_RATE, Quantization


class LearningSettings(BaseModel):
    """The learning loop: datasets from reviewed feedback, training, the gate, rollout."""

    model_config = ConfigDict(frozen=True)  # read once, never assigned

    validation_fraction: float = Field(
        default=0.2, ge=0, lt=1, description="Share of examples (by question hash) held out."
    )
    min_output_chars: int = Field(
        default=20, ge=1, le=10_000, description="Shorter answers are not training examples."
    )
    max_output_chars: int = Field(
        default=4000, ge=10, le=100_000, description="Longer answers are not training examples."
    )
    near_duplicate_threshold: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Word 3-gram Jaccard similarity at which two examples count as one.",
    )
    method: Literal["lora", "prefix", "full"] = Field(
        default="lora", description="Default training method (prefix tuning is not exportable)."
    )
    epochs: int = Field(
        default=2,
        ge=BOUNDS["epochs"][0],
        le=BOUNDS["epochs"][1],
        description="Default epochs per run.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where training runs; auto: a CUDA GPU when there is one."
    )
    qlora: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Train LoRA over a 4-bit NF4 base (bitsandbytes); auto: on a GPU with "
        "bitsandbytes installed (install the 'gpu' extra), never on the CPU.",
    )
    learning_rate: float = Field(
        default=2e-4, gt=0, le=MAX_LEARNING_RATE, description="Default peak LR."
    )
    max_seq_len: int = Field(
        default=512,
        ge=BOUNDS["max_seq_len"][0],
        le=BOUNDS["max_seq_len"][1],
        description="Tokens per example.",
    )
    batch_size: int = Field(
        default=4,
        ge=BOUNDS["batch_size"][0],
        le=BOUNDS["batch_size"][1],
        description="Examples per step.",
    )
    quantization: Quantization = Field(
        default="q8_0", description="Quantization of the exported GGUF (none: float32)."
    )
    lock_ttl_s: float = Field(
        default=120,
        ge=5,
        le=3600,
        description="Training lease period; a killed worker blocks the next run this long.",
    )
    eval_max_tokens: int = Field(
        default=48, ge=4, le=1024, description="Tokens generated per item by the gate."
    )
    eval_validation_limit: int = Field(
        default=32, ge=1, le=10_000, description="Validation examples the gate scores."
    )
    regression_limit: int = Field(
        default=12, ge=1, le=1000, description="Items of the fixed regression set the gate scores."
    )
    max_loss_increase: float = Field(
        default=0.02, ge=0, le=10, description="Gate: allowed relative loss increase per set."
    )
    max_rouge_drop: float = Field(
        default=0.02, ge=0, le=1, description="Gate: allowed absolute ROUGE-L drop per set."
    )
    max_citation_precision_drop: float = Field(
        default=0.05, ge=0, le=1, description="Gate: allowed citation-precision drop."
    )
    max_refusal_increase: float = Field(
        default=0.1, ge=0, le=1, description="Gate: allowed refusal-rate increase."
    )
    max_speed_drop: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Gate: allowed relative drop in tokens/s (generous: shared cores are noisy).",
    )
    auto_promote: bool = Field(
        default=False,
        description="Serve a model trained from user feedback as soon as it passes the gate. "
        "Off: it waits as a candidate that passed, and an admin promotes it (scheduled runs "
        "still train and evaluate on their own).",
    )
    keep_candidates: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Model files of rejected or never-promoted versions kept; older ones are "
        "deleted (active and retired versions are always kept for rollback).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where the dense (float32) copy of a served GGUF is cached for training "
        "(~540 MB each, made once in ~20 s). Empty: models/cache in the data folder.",
    )
    check_every_s: float = Field(
        default=60,
        ge=5,
        le=86_400,
        description="How often beat runs the schedule check (the schedule itself is edited "
        "at run time on the admin page).",
    )
