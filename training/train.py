"""Fine-tune the served model on a dataset version: LoRA (default), prefix tuning, or full.

Reads top to bottom: load the base (the served GGUF, dequantized once into a dense copy on
disk), encode the examples with the model's own chat template (loss on the answer tokens
only), wrap the model for the method, then the loop: warmup + cosine learning rate, gradient
accumulation and clipping, validation each epoch with early stopping, progress reports.
The result is an adapter (or full weights) folder plus the loss curve as JSON and SVG.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.config import TrainingConfig
from training.datasets import chat_messages
from training.examples import Example
from training.prompt_format import TURN_ENDS, template_for

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

IGNORE = -100  # label of tokens the loss skips (the prompt, the padding)

# step, total steps, training loss, estimated seconds left
Progress = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]


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


class TrainingError(Exception):
    """A run that cannot start (no examples, every example too long, unknown model)."""


# ---- the base model --------------------------------------------------------------------------
def dense_dir_for(gguf_path: Path, cache_dir: Path) -> Path:
    """The folder of the dense copy of ``gguf_path`` (one per file content identity)."""
    stat = gguf_path.stat()
    key = hashlib.sha256(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir / f"dense-{gguf_path.stem}-{key.hexdigest()[:12]}"


@dataclass(frozen=True)
class Placement:
    """Where a run trains: the torch device, whether the base is loaded in 4 bits, and
    whether the forward pass runs under bf16 autocast."""

    device: str
    four_bit: bool
    bf16: bool = False


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes bf16 natively (a CPU with AVX512-BF16 or AMX, a recent GPU)."""
    import torch

    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def placement(config: TrainingConfig) -> Placement:
    """The device and QLoRA choice for ``config`` on this machine (TrainingError if a
    required GPU or bitsandbytes is missing)."""
    import importlib.util

    import torch

    has_gpu = torch.cuda.is_available()
    if config.device == "cuda" and not has_gpu:
        raise TrainingError("device 'cuda' asked for, but torch sees no CUDA GPU")
    device = "cuda" if config.device == "cuda" or (config.device == "auto" and has_gpu) else "cpu"
    can_4bit = (
        device == "cuda"
        and config.method == "lora"
        and importlib.util.find_spec("bitsandbytes") is not None
    )
    if config.qlora == "on" and not can_4bit:
        raise TrainingError("QLoRA needs LoRA on a CUDA GPU with bitsandbytes installed")
    bf16 = config.precision == "bf16" or (config.precision == "auto" and native_bf16(device))
    return Placement(device, four_bit=can_4bit and config.qlora != "off", bf16=bf16)


def load_base(gguf_path: Path, cache_dir: Path, four_bit: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) in float32: from the dense cache (~1 s), or from the GGUF (~20 s)
    and then cached, written to a temporary folder and renamed. ``four_bit`` loads the
    cached copy quantized to NF4 on the GPU instead (QLoRA)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dense = dense_dir_for(gguf_path, cache_dir)
    if not (dense / "config.json").is_file():
        started = time.perf_counter()
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        # A model loaded from a GGUF is marked quantized and refuses save_pretrained; its
        # weights are already dense float32, so the marks can go.
        model.hf_quantizer = None
        model.config.quantization_config = None
        model.is_quantized = False
        cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".dense-", dir=cache_dir))
        try:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            os.rename(staging, dense)
        except FileExistsError:  # another process cached it first
            shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info(
            "dense copy of %s cached in %.1fs", gguf_path.name, time.perf_counter() - started
        )
    tokenizer = AutoTokenizer.from_pretrained(str(dense))
    if not tokenizer.chat_template:  # a base model (Gemma 3 270M): the product's own turns
        tokenizer.chat_template = template_for(tokenizer.get_vocab())
    if four_bit:
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        model = AutoModelForCausalLM.from_pretrained(
            str(dense), quantization_config=quantization, device_map={"": 0}
        )
        return prepare_model_for_kbit_training(model), tokenizer
    model = AutoModelForCausalLM.from_pretrained(str(dense), dtype=torch.float32)
    return model, tokenizer


# ---- data ------------------------------------------------------------------------------------
def answer_end_ids(tokenizer: Any) -> list[int]:
    """The tokens that close an assistant turn in the chat template (ChatML: <|im_end|>,
    Gemma: <end_of_turn>)."""
    vocabulary = tokenizer.get_vocab()
    for marker in TURN_ENDS:
        if marker in vocabulary:
            return [tokenizer.convert_tokens_to_ids(marker)]
    return [tokenizer.eos_token_id]


def prompt_ids(tokenizer: Any, instruction: str, context: str, system_prompt: str) -> list[int]:
    """The prompt tokens exactly as serving builds them: the GGUF's chat template."""
    ids = tokenizer.apply_chat_template(
        chat_messages(instruction, context, system_prompt),
        add_generation_prompt=True,
        tokenize=True,
    )
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


def encode(
    example: Example, tokenizer: Any, system_prompt: str, max_seq_len: int
) -> Encoded | None:
    """Prompt + answer tokens, labels masked to the answer; None when the prompt alone
    leaves fewer than 16 answer tokens (the answer is cut to fit otherwise)."""
    prompt = prompt_ids(tokenizer, example.instruction, example.input, system_prompt)
    answer = tokenizer(example.output, add_special_tokens=False)["input_ids"]
    answer = list(answer) + answer_end_ids(tokenizer)
    room = max_seq_len - len(prompt)
    if room < 16:
        return None
    answer = answer[:room]
    return Encoded(prompt + answer, [IGNORE] * len(prompt) + answer)


def batches(
    encoded: Sequence[Encoded], batch_size: int, pad_id: int, rng: random.Random | None
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(input_ids, attention_mask, labels) padded on the right; shuffled when ``rng`` is given."""
    import torch

    order = list(range(len(encoded)))
    if rng is not None:
        rng.shuffle(order)
    out = []
    for start in range(0, len(order), batch_size):
        group = [encoded[i] for i in order[start : start + batch_size]]
        width = max(len(e.input_ids) for e in group)
        ids = torch.full((len(group), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        labels = torch.full((len(group), width), IGNORE, dtype=torch.long)
        for row, e in enumerate(group):
            n = len(e.input_ids)
            ids[row, :n] = torch.tensor(e.input_ids)
            mask[row, :n] = 1
            labels[row, :n] = torch.tensor(e.labels)
        out.append((ids, mask, labels))
    return out


def _to(device: str, batch: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
    if device == "cpu":
        return batch
    ids, mask, labels = batch
    return ids.to(device), mask.to(device), labels.to(device)


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


def lr_at(step: int, total: int, config: TrainingConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / (config.warmup_steps + 1)
    span = max(1, total - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return config.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def evaluate_loss(model: Any, data: Sequence[tuple[Any, Any, Any]]) -> float:
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


# ---- the run ---------------------------------------------------------------------------------
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
    model, tokenizer = load_base(base_gguf, cache_dir, four_bit=place.four_bit)
    if not place.four_bit:  # a 4-bit model is placed on the GPU as it loads
        model.to(place.device)
    logger.info(
        "training on %s%s%s",
        place.device,
        " (QLoRA: 4-bit base)" if place.four_bit else "",
        " with bf16 autocast" if place.bf16 else "",
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_encoded = [
        e
        for e in (encode(x, tokenizer, system_prompt, config.max_seq_len) for x in train_examples)
        if e is not None
    ]
    val_encoded = [
        e
        for e in (
            encode(x, tokenizer, system_prompt, config.max_seq_len) for x in validation_examples
        )
        if e is not None
    ]
    if not train_encoded:
        raise TrainingError("no training example fits max_seq_len")
    val_batches = [
        _to(place.device, b) for b in batches(val_encoded, config.batch_size, pad_id, None)
    ]

    model = wrap(model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(
        math.ceil(len(train_encoded) / config.batch_size) / config.grad_accumulation
    )
    total = steps_per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    logger.info(
        "training %s: %d train / %d validation examples, %d steps, %d trainable parameters",
        config.method,
        len(train_encoded),
        len(val_encoded),
        total,
        sum(p.numel() for p in trainable),
    )

    history: list[dict[str, float]] = []
    best_val, best_state, bad_evals = math.inf, None, 0
    step, stopped_early, last_loss = 0, False, math.nan
    loop_started = time.perf_counter()
    micro = 0
    running = 0.0
    for epoch in range(config.epochs):
        for batch in batches(train_encoded, config.batch_size, pad_id, rng):
            ids, mask, labels = _to(place.device, batch)
            with torch.autocast(place.device, dtype=torch.bfloat16, enabled=place.bf16):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss / config.grad_accumulation).backward()
            running += float(loss.detach()) / config.grad_accumulation
            micro += 1
            if micro % config.grad_accumulation:
                continue
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, config)
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            last_loss, running = running, 0.0
            history.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "train_loss": last_loss,
                    "lr": optimizer.param_groups[0]["lr"],
                }
            )
            elapsed = time.perf_counter() - loop_started
            if progress is not None:
                progress(step, total, last_loss, elapsed / step * (total - step))
            if config.eval_every and step % config.eval_every == 0 and val_batches:
                stop, best_val, best_state, bad_evals = _validate(
                    model, val_batches, history, config, best_val, best_state, bad_evals
                )
                if stop:
                    stopped_early = True
                    break
            if step >= total:
                break
        if stopped_early or step >= total:
            break
        if not config.eval_every and val_batches:
            stop, best_val, best_state, bad_evals = _validate(
                model, val_batches, history, config, best_val, best_state, bad_evals
            )
            if stop:
                stopped_early = True
                break
    if val_batches and (not history or "val_loss" not in history[-1]):
        _, best_val, best_state, bad_evals = _validate(
            model, val_batches, history, config, best_val, best_state, bad_evals
        )
    loop_seconds = time.perf_counter() - loop_started
    if best_state is not None:
        _load_trainable(model, best_state)  # early stopping keeps the best evaluation

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
    return TrainResult(
        output_dir=output_dir,
        method=config.method,
        steps=step,
        best_val_loss=None if math.isinf(best_val) else best_val,
        final_train_loss=None if math.isnan(last_loss) else last_loss,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - started,
        steps_per_s=step / loop_seconds if loop_seconds > 0 else 0.0,
        history=history,
    )


def _validate(
    model: Any,
    val_batches: Sequence[tuple[Any, Any, Any]],
    history: list[dict[str, float]],
    config: TrainingConfig,
    best_val: float,
    best_state: dict[str, Any] | None,
    bad_evals: int,
) -> tuple[bool, float, dict[str, Any] | None, int]:
    """One validation pass: (stop?, best loss, best trainable state, evaluations without gain)."""
    val = evaluate_loss(model, val_batches)
    if history:
        history[-1]["val_loss"] = val
    else:
        history.append({"step": 0, "epoch": 0, "val_loss": val})
    if val < best_val - 1e-4:
        return False, val, _trainable_state(model), 0
    bad_evals += 1
    stop = bool(config.early_stopping_patience) and bad_evals >= config.early_stopping_patience
    return stop, best_val, best_state, bad_evals


def _trainable_state(model: Any) -> dict[str, Any]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable(model: Any, state: dict[str, Any]) -> None:
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in state:
                param.copy_(state[name])


def loss_curve_svg(history: Sequence[dict[str, float]], width: int = 480, height: int = 200) -> str:
    """The training (and validation) loss per step as a small standalone SVG."""
    points = [(h["step"], h["train_loss"]) for h in history if "train_loss" in h]
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    values = [v for _, v in points + val if math.isfinite(v)]
    if not values:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'role="img" aria-label="No training steps yet">'
            f'<text x="30" y="{height // 2}" font-size="12">No training steps yet.</text></svg>'
        )
    top, bottom = max(values), min(values)
    span = (top - bottom) or 1.0
    last = max(s for s, _ in points + val) or 1
    pad = 30

    def xy(step: float, value: float) -> str:
        x = pad + (width - 2 * pad) * step / last
        y = pad + (height - 2 * pad) * (top - value) / span
        return f"{x:.1f},{y:.1f}"

    train_line = " ".join(xy(s, v) for s, v in points if math.isfinite(v))
    val_line = " ".join(xy(s, v) for s, v in val if math.isfinite(v))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Loss per step">'
        f'<rect width="{width}" height="{height}" fill="white"/>'
        f'<text x="{pad}" y="18" font-size="12">'
        f"loss {bottom:.3f} to {top:.3f}, {last:g} steps</text>"
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{train_line}"/>'
        f'<polyline fill="none" stroke="#d1242f" stroke-width="2" stroke-dasharray="4 3" '
        f'points="{val_line}"/>'
        "</svg>"
    )
