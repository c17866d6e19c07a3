"""The training loop: warmup + cosine learning rate, gradient accumulation and clipping,
validation with early stopping, progress reports."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from training.base_model import Placement
from training.config import TrainingConfig
from training.encoding import IGNORE, Encoded, batches, to_device

logger = logging.getLogger(__name__)

# step, total steps, training loss, estimated seconds left
Progress = Callable[[int, int, float, float], None]

Batch = tuple[Any, Any, Any]  # input_ids, attention_mask, labels


@dataclass(frozen=True)
class TrainingData:
    """The encoded examples of a run, and its validation batches already on the device."""

    train: list[Encoded]
    validation: list[Encoded]
    validation_batches: list[Batch]
    pad_id: int


@dataclass(frozen=True)
class LoopOutcome:
    """What the loop did: optimiser steps, the loss history, and how it ended."""

    steps: int
    history: list[dict[str, float]]
    best_val_loss: float  # inf without any validation
    last_train_loss: float  # nan without any step
    stopped_early: bool
    seconds: float


def lr_at(step: int, total: int, config: TrainingConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / (config.warmup_steps + 1)
    span = max(1, total - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def total_steps(examples: int, config: TrainingConfig) -> int:
    """Optimiser steps of the run: every epoch's, capped at ``max_steps`` when set."""
    steps_per_epoch = math.ceil(math.ceil(examples / config.batch_size) / config.grad_accumulation)
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    return total


def run_loop(
    model: Any,
    data: TrainingData,
    config: TrainingConfig,
    place: Placement,
    rng: random.Random,
    progress: Progress | None,
) -> LoopOutcome:
    """Train ``model`` in place; it ends holding the weights of its best validation."""
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total = total_steps(len(data.train), config)
    _log_plan(config, data, total, trainable)
    history: list[dict[str, float]] = []
    stopping = EarlyStopping(model, data.validation_batches, config.early_stopping_patience)
    step, stopped_early, last_loss = 0, False, math.nan
    loop_started = time.perf_counter()
    micro = 0
    running = 0.0
    for epoch in range(config.epochs):
        for batch in batches(data.train, config.batch_size, data.pad_id, rng):
            running += _forward_backward(model, batch, config, place)
            micro += 1
            if micro % config.grad_accumulation:
                continue
            lr = _optimizer_step(optimizer, trainable, lr_at(step, total, config), config)
            step += 1
            last_loss, running = running, 0.0
            history.append({"step": step, "epoch": epoch, "train_loss": last_loss, "lr": lr})
            elapsed = time.perf_counter() - loop_started
            if progress is not None:
                progress(step, total, last_loss, elapsed / step * (total - step))
            due = config.eval_every and step % config.eval_every == 0
            if due and data.validation_batches and stopping.validate(history):
                stopped_early = True
                break
            if step >= total:
                break
        if stopped_early or step >= total:
            break
        if not config.eval_every and data.validation_batches and stopping.validate(history):
            stopped_early = True
            break
    if data.validation_batches and (not history or "val_loss" not in history[-1]):
        stopping.validate(history)
    seconds = time.perf_counter() - loop_started
    stopping.restore_best()
    return LoopOutcome(step, history, stopping.best_val, last_loss, stopped_early, seconds)


def _log_plan(config: TrainingConfig, data: TrainingData, total: int, trainable: list[Any]) -> None:
    logger.info(
        "training %s: %d train / %d validation examples, %d steps, %d trainable parameters",
        config.method,
        len(data.train),
        len(data.validation),
        total,
        sum(p.numel() for p in trainable),
    )


def _forward_backward(model: Any, batch: Batch, config: TrainingConfig, place: Placement) -> float:
    """One micro-batch's loss, back-propagated as its share of the accumulated step."""
    import torch

    ids, mask, labels = to_device(place.device, batch)
    with torch.autocast(place.device, dtype=torch.bfloat16, enabled=place.bf16):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    (loss / config.grad_accumulation).backward()
    return float(loss.detach()) / config.grad_accumulation


def _optimizer_step(
    optimizer: Any, trainable: list[Any], lr: float, config: TrainingConfig
) -> float:
    """One optimiser step at learning rate ``lr`` on clipped gradients; the rate it used."""
    import torch

    for group in optimizer.param_groups:
        group["lr"] = lr
    torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return optimizer.param_groups[0]["lr"]


class EarlyStopping:
    """Validation passes that remember the best trainable weights and say when to stop."""

    def __init__(self, model: Any, validation_batches: Sequence[Batch], patience: int) -> None:
        self.model = model
        self.validation_batches = validation_batches
        self.patience = patience  # evaluations without improvement; 0: never stop
        self.best_val = math.inf
        self.best_state: dict[str, Any] | None = None
        self.bad_evals = 0

    def validate(self, history: list[dict[str, float]]) -> bool:
        """One validation pass, recorded in ``history``; whether the run should stop."""
        val = evaluate_loss(self.model, self.validation_batches)
        if history:
            history[-1]["val_loss"] = val
        else:
            history.append({"step": 0, "epoch": 0, "val_loss": val})
        if val < self.best_val - 1e-4:
            self.best_val, self.best_state, self.bad_evals = val, _trainable_state(self.model), 0
            return False
        self.bad_evals += 1
        return bool(self.patience) and self.bad_evals >= self.patience

    def restore_best(self) -> None:
        """The model back to its best evaluation's weights (if any evaluation improved)."""
        if self.best_state is not None:
            _load_trainable(self.model, self.best_state)


def evaluate_loss(model: Any, data: Sequence[Batch]) -> float:
    """Mean loss per answer token over ``data``."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for ids, mask, labels in data:
            n = int((labels[:, 1:] != IGNORE).sum())
            if n == 0:
                continue
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            total += float(loss) * n
            tokens += n
    model.train()
    return total / tokens if tokens else float("nan")


def _trainable_state(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable(model: Any, state: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in state:
                param.copy_(state[name])
