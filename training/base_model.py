"""The model a run starts from: the served GGUF's dense copy on disk, and where it trains."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import TrainingConfig, TrainingError
from training.prompt_format import template_for

logger = logging.getLogger(__name__)


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
        _write_dense_copy(gguf_path, cache_dir, dense)
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


def _write_dense_copy(gguf_path: Path, cache_dir: Path, dense: Path) -> None:
    """The GGUF loaded in float32 and saved as a model folder ``dense`` (written to a
    temporary folder and renamed, so a reader never sees half of it)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
    logger.info("dense copy of %s cached in %.1fs", gguf_path.name, time.perf_counter() - started)
