"""Export a trained run to a GGUF llama.cpp serves: merge, write, optionally quantize.

llama.cpp's converters are not installed (they live only in its source tree), so the GGUF
is written here with the ``gguf`` package, taking the served base GGUF as the template:
every metadata field (architecture, hyperparameters, tokenizer, chat template) is copied,
and every tensor is written under the base's own name and shape, from the merged weights.
llama.cpp stores the llama-architecture q/k projections permuted relative to the Hugging
Face layout (transformers un-permutes them when it loads a GGUF), so they are permuted
back on the way out. Files are written under temporary names and renamed when complete.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.base_model import load_base
from training.config import Quantization

logger = logging.getLogger(__name__)


class ExportError(Exception):
    """The run cannot be written as a GGUF (a method with no merge, a tensor mismatch)."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    quantization: str
    seconds: float
    bytes: int


def merged_state(run_dir: Path, base_gguf: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """The run's weights merged into the base, as float32 arrays in the Hugging Face layout."""
    import torch

    if (run_dir / "model").is_dir():
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(run_dir / "model"), dtype=torch.float32)
    else:
        from peft import PeftConfig, PeftModel

        adapter = run_dir / "adapter"
        if PeftConfig.from_pretrained(str(adapter)).peft_type.value != "LORA":
            raise ExportError(
                "only LoRA adapters and full fine-tunes merge into a GGUF; prefix tuning "
                "needs the PEFT model at serving time"
            )
        base, _ = load_base(base_gguf, cache_dir)
        model = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    return {name: t.detach().float().numpy() for name, t in model.state_dict().items()}


def permute_for_llama_cpp(weights: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotary layout of a q or k projection -> llama.cpp's (interleaved halves)."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_tensors(base_gguf: Path, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``state`` (Hugging Face names and layout) renamed and laid out as the base GGUF's."""
    import gguf

    reader = gguf.GGUFReader(str(base_gguf))
    arch, names, n_head, n_head_kv = _layout(reader)
    tensors: dict[str, np.ndarray] = {}
    for hf_name, value in state.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(f"no GGUF name for {hf_name}")
        tensors[name] = to_llama_cpp_layout(name, value, arch, n_head, n_head_kv)
    return tensors


def _layout(reader: Any) -> tuple[str, Any, int, int]:
    """(architecture, HF -> GGUF tensor name map, heads, key/value heads) of a GGUF."""
    import gguf

    arch = reader.fields["general.architecture"].contents()
    n_blocks = int(reader.fields[f"{arch}.block_count"].contents())
    n_head = int(reader.fields[f"{arch}.attention.head_count"].contents())
    kv_field = reader.fields.get(f"{arch}.attention.head_count_kv")
    n_head_kv = int(kv_field.contents()) if kv_field is not None else n_head
    arch_ids = {name: arch_id for arch_id, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in arch_ids:
        raise ExportError(f"unknown GGUF architecture {arch!r}")
    return arch, gguf.get_tensor_name_map(arch_ids[arch], n_blocks), n_head, n_head_kv


def to_llama_cpp_layout(
    gguf_name: str, value: np.ndarray, arch: str, n_head: int, n_head_kv: int
) -> np.ndarray:
    """A weight in HF layout as llama.cpp stores it (llama q/k projections are permuted)."""
    if arch == "llama" and gguf_name.endswith("attn_q.weight"):
        return permute_for_llama_cpp(value, n_head)
    if arch == "llama" and gguf_name.endswith("attn_k.weight"):
        return permute_for_llama_cpp(value, n_head_kv)
    return value


def write_gguf(
    base_gguf: Path, state: dict[str, np.ndarray], out_path: Path, f16: bool = False
) -> None:
    """Write ``state`` (HF names) as a GGUF shaped exactly like ``base_gguf`` (metadata copied)."""
    write_gguf_tensors(base_gguf, gguf_tensors(base_gguf, state), out_path, f16)


def write_gguf_tensors(
    base_gguf: Path, tensors: dict[str, np.ndarray], out_path: Path, f16: bool = False
) -> None:
    """Write ``tensors`` (GGUF names and layout) with the base GGUF's metadata."""
    import gguf

    reader = gguf.GGUFReader(str(base_gguf))
    arch = reader.fields["general.architecture"].contents()
    wanted = {t.name: t for t in reader.tensors}
    missing = set(wanted) - set(tensors)
    if missing:
        raise ExportError(f"the model lacks tensors of the base GGUF: {sorted(missing)[:5]}")

    writer = gguf.GGUFWriter(str(out_path), arch)
    file_type = gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        if key == "general.file_type":
            writer.add_file_type(file_type)
            continue
        main = field.types[0]
        sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), main, sub_type=sub)
    if "tokenizer.chat_template" not in reader.fields:
        # A base without a template was trained with the product's own turns: serve them.
        from training.prompt_format import template_for

        tokens = reader.fields.get("tokenizer.ggml.tokens")
        writer.add_chat_template(template_for(set(tokens.contents()) if tokens else set()))
    for name, base_tensor in wanted.items():
        value = tensors[name]
        ggml_shape = tuple(int(x) for x in base_tensor.shape)
        if tuple(reversed(value.shape)) != ggml_shape:
            raise ExportError(f"{name}: shape {value.shape} does not match the base {ggml_shape}")
        # Norms and other 1-D tensors stay float32 in an F16 file, as llama.cpp expects.
        dtype = np.float16 if f16 and value.ndim > 1 else np.float32
        writer.add_tensor(name, np.ascontiguousarray(value.astype(dtype)))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def lora_merged_tensors(base_gguf: Path, adapter_dir: Path) -> dict[str, np.ndarray]:
    """The base GGUF's weights (dequantized) with a PEFT LoRA adapter merged in, in numpy.

    The same sum PEFT's ``merge_and_unload`` makes (W + B @ A * alpha / r), done on the GGUF
    directly: no torch, no dense copy, a few seconds for a small model.
    """
    import json

    import gguf
    from safetensors.numpy import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("peft_type") != "LORA":
        raise ExportError(f"{adapter_dir} is not a LoRA adapter")
    rank = int(config["r"])
    scale = float(config["lora_alpha"]) / (rank**0.5 if config.get("use_rslora") else rank)
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    reader = gguf.GGUFReader(str(base_gguf))
    arch, names, n_head, n_head_kv = _layout(reader)
    tensors = {
        t.name: np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        for t in reader.tensors
    }
    for key, a in weights.items():
        if ".lora_A." not in key:
            continue
        b = weights[key.replace(".lora_A.", ".lora_B.")]
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        name = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if name is None or name not in tensors:
            raise ExportError(f"the adapter's module {module} has no tensor in {base_gguf.name}")
        delta = (b.astype(np.float32) @ a.astype(np.float32)) * scale
        delta = to_llama_cpp_layout(name, delta, arch, n_head, n_head_kv)
        if delta.shape != tensors[name].shape:
            raise ExportError(f"{name}: adapter shape {delta.shape} != {tensors[name].shape}")
        tensors[name] = tensors[name] + delta
    return tensors


def merge_adapter(
    base_gguf: Path,
    adapter_dir: Path,
    out_path: Path,
    quantization: Quantization = "q8_0",
    threads: int = 2,
) -> ExportResult:
    """A LoRA adapter merged into its base GGUF and written (quantized) to ``out_path``."""
    started = time.perf_counter()
    tensors = lora_merged_tensors(base_gguf, adapter_dir)
    _write_final(base_gguf, out_path, quantization, threads, tensors=tensors)
    size = out_path.stat().st_size
    seconds = time.perf_counter() - started
    logger.info("merged %s into %s in %.1fs", adapter_dir.name, out_path.name, seconds)
    return ExportResult(out_path, quantization, seconds, size)


def quantize(source: Path, target: Path, quantization: str, threads: int = 2) -> None:
    """llama.cpp's own quantizer (``llama_model_quantize``) from an F32/F16 GGUF."""
    import ctypes

    import llama_cpp

    ftypes = {
        "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
        "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
    }
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[quantization]
    params.nthread = threads
    # llama.cpp reports every tensor through llama-cpp-python's logger, which prints to
    # stderr: ~800 lines per export, each through the PII log filter in a worker (~15 s).
    # Only ERROR quiets it (as Llama(verbose=False) does; assistant/llm/local.py likewise).
    llama_logger = logging.getLogger("llama-cpp-python")
    level = llama_logger.level
    llama_logger.setLevel(max(level, logging.ERROR))
    try:
        rc = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    finally:
        llama_logger.setLevel(level)
    if rc != 0:
        raise ExportError(f"llama_model_quantize failed with {rc}")


def export_run(
    run_dir: Path,
    base_gguf: Path,
    cache_dir: Path,
    out_path: Path,
    quantization: Quantization = "q8_0",
    threads: int = 2,
    keep_unquantized: Path | None = None,
) -> ExportResult:
    """Merge the run into the base and write ``out_path`` (temporary names, then rename).

    A LoRA adapter is merged in numpy into the base GGUF's own tensors (every other tensor
    is kept exactly as the base has it: Gemma's stored norms, for one, differ from what
    transformers holds); a full fine-tune is written from its weights.
    ``keep_unquantized``: also keep the F32 file there (the parity test reads it).
    """
    started = time.perf_counter()
    adapter = run_dir / "adapter"
    if (adapter / "adapter_config.json").is_file() and _is_lora(adapter):
        tensors = lora_merged_tensors(base_gguf, adapter)
    else:
        tensors = gguf_tensors(base_gguf, merged_state(run_dir, base_gguf, cache_dir))
    _write_final(
        base_gguf,
        out_path,
        quantization,
        threads,
        tensors=tensors,
        keep_unquantized=keep_unquantized,
    )
    size = out_path.stat().st_size
    seconds = time.perf_counter() - started
    logger.info(
        "exported %s (%s, %d MB) in %.1fs", out_path.name, quantization, size >> 20, seconds
    )
    return ExportResult(out_path, quantization, seconds, size)


def _is_lora(adapter: Path) -> bool:
    import json

    return json.loads((adapter / "adapter_config.json").read_text()).get("peft_type") == "LORA"


def _write_final(
    base_gguf: Path,
    out_path: Path,
    quantization: str,
    threads: int,
    *,
    tensors: dict[str, np.ndarray],
    keep_unquantized: Path | None = None,
) -> None:
    """Write ``tensors`` as ``out_path``: dense under a temporary name, quantized, renamed."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    dense_tmp = out_path.with_name(f".{out_path.name}.f32.tmp")
    final_tmp = out_path.with_name(f".{out_path.name}.tmp")
    try:
        write_gguf_tensors(base_gguf, tensors, dense_tmp, f16=quantization == "f16")
        tensors.clear()
        if quantization in ("none", "f16"):
            os.replace(dense_tmp, final_tmp)
        else:
            quantize(dense_tmp, final_tmp, quantization, threads)
            if keep_unquantized is not None:
                os.replace(dense_tmp, keep_unquantized)
        _fsync(final_tmp)
        os.replace(final_tmp, out_path)
    finally:
        for leftover in (dense_tmp, final_tmp):
            leftover.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def gguf_metadata(path: Path) -> dict[str, Any]:
    """The string and number metadata of a GGUF (for scans and the admin page)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    out: dict[str, Any] = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            out[key] = field.contents()
        except Exception:  # noqa: BLE001 - an odd field type is skipped, not fatal
            continue
    return out
