"""Fine-tune the served model on a dataset version: LoRA (default), prefix tuning, or full.

Reads top to bottom: load the base (the served GGUF, dequantized once into a dense copy on
disk: ``training.base_model``), encode the examples with the model's own chat template (loss
on the answer tokens only: ``training.encoding``), wrap the model for the method, run the loop
(``training.loop``), save. The result is an adapter (or full weights) folder plus the loss
curve as JSON and SVG.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.base_model import Placement, load_base, placement
from training.config import TrainingConfig, TrainingError
from training.encoding import Encoded, batches, encode, to_device
from training.examples import Example
from training.loop import Progress, TrainingData, run_loop
from training.loss_curve import loss_curve_svg

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a run produced; ``output_dir`` holds the adapter (or full weights) and curves."""

    output_dir: Path
    method: str
    steps: int
    best_val_loss: float | None
    final_train_loss: float | None
    stopped_early: bool
    seconds: float
    steps_per_s: float
    history: list[dict[str, float]] = field(default_factory=list)


def train(
    config: TrainingConfig,
    train_examples: Sequence[Example],
    validation_examples: Sequence[Example],
    base_gguf: Path,
    output_dir: Path,
    cache_dir: Path,
    system_prompt: str,
    progress: Progress | None = None,
) -> TrainResult:
    """Train and write ``output_dir`` (via a temporary folder renamed at the end)."""
    import torch

    started = time.perf_counter()
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)

    place = placement(config)
    model, tokenizer = _load_placed(base_gguf, cache_dir, place)
    data = _encode_data(
        config, train_examples, validation_examples, tokenizer, system_prompt, place
    )
    model = wrap(model, config)
    outcome = run_loop(model, data, config, place, rng, progress)
    _save(model, tokenizer, config, outcome.history, output_dir)
    return TrainResult(
        output_dir=output_dir,
        method=config.method,
        steps=outcome.steps,
        best_val_loss=None if math.isinf(outcome.best_val_loss) else outcome.best_val_loss,
        final_train_loss=None if math.isnan(outcome.last_train_loss) else outcome.last_train_loss,
        stopped_early=outcome.stopped_early,
        seconds=time.perf_counter() - started,
        steps_per_s=outcome.steps / outcome.seconds if outcome.seconds > 0 else 0.0,
        history=outcome.history,
    )


def _load_placed(base_gguf: Path, cache_dir: Path, place: Placement) -> tuple[Any, Any]:
    """(model, tokenizer), the model on the device it trains on."""
    model, tokenizer = load_base(base_gguf, cache_dir, four_bit=place.four_bit)
    if not place.four_bit:  # a 4-bit model is placed on the GPU as it loads
        model.to(place.device)
    logger.info(
        "training on %s%s%s",
        place.device,
        " (QLoRA: 4-bit base)" if place.four_bit else "",
        " with bf16 autocast" if place.bf16 else "",
    )
    return model, tokenizer


def _encode_data(
    config: TrainingConfig,
    train_examples: Sequence[Example],
    validation_examples: Sequence[Example],
    tokenizer: Any,
    system_prompt: str,
    place: Placement,
) -> TrainingData:
    """The examples that fit ``max_seq_len``, encoded (TrainingError when no training one does)."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def fitting(examples: Sequence[Example]) -> list[Encoded]:
        encoded = (encode(x, tokenizer, system_prompt, config.max_seq_len) for x in examples)
        return [e for e in encoded if e is not None]

    train_encoded = fitting(train_examples)
    val_encoded = fitting(validation_examples)
    if not train_encoded:
        raise TrainingError("no training example fits max_seq_len")
    val_batches = [
        to_device(place.device, b) for b in batches(val_encoded, config.batch_size, pad_id, None)
    ]
    return TrainingData(train_encoded, val_encoded, val_batches, pad_id)


# ---- the method ------------------------------------------------------------------------------
def wrap(model: Any, config: TrainingConfig) -> Any:
    """The model prepared for ``config.method``: a PEFT model, or itself (full)."""
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if config.method == "full":
        model.train()
        return model
    from peft import LoraConfig, PrefixTuningConfig, TaskType, get_peft_model

    peft_config: Any
    if config.method == "lora":
        peft_config = LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=config.r,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=list(config.target_modules),
        )
    else:
        peft_config = PrefixTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.num_virtual_tokens
        )
    if config.gradient_checkpointing:
        model.enable_input_require_grads()
    peft_model = get_peft_model(model, peft_config)
    peft_model.train()
    return peft_model


def _save(
    model: Any,
    tokenizer: Any,
    config: TrainingConfig,
    history: list[dict[str, float]],
    output_dir: Path,
) -> None:
    """The adapter (or full model), the config and the loss curves, written to a temporary
    folder renamed ``output_dir`` at the end."""
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}-", dir=output_dir.parent))
    try:
        model.save_pretrained(staging / ("adapter" if config.method != "full" else "model"))
        if config.method == "full":
            tokenizer.save_pretrained(staging / "model")
        (staging / "config.json").write_text(json.dumps(config.to_json(), indent=1))
        (staging / "loss_curve.json").write_text(json.dumps(history, indent=1))
        (staging / "loss_curve.svg").write_text(loss_curve_svg(history))
        os.rename(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
