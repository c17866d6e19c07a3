"""The shipped grounded model: how it is trained (``GROUNDED_TRAINING``), and its adapter
published into the repository with a manifest of the data, base and run that made it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.learning.datasets import DatasetInfo
    from assistant.services import Services


def publish(
    services: Services, result: dict[str, Any], job_id: int, dataset: DatasetInfo, out_dir: Path
) -> Path:
    """Copy the run's adapter and a manifest of what made it into ``out_dir`` (replaced whole)."""
    import shutil
    import tempfile

    from assistant.learning.folders import runs_dir

    run = runs_dir(services) / f"job-{job_id}"
    base = services.settings.llm.model_path
    manifest = {
        "name": out_dir.name,
        "base_model": {
            "file": base.name,
            "bytes": base.stat().st_size,
            "sha256": hashlib.sha256(base.read_bytes()).hexdigest(),
        },
        "dataset": {
            "content_hash": dataset.content_hash,
            "n_train": dataset.n_train,
            "n_validation": dataset.n_validation,
            "provenance": dataset.provenance,
        },
        "training_config": json.loads((run / "config.json").read_text()),
        "run": {
            k: result.get(k)
            for k in (
                "steps",
                "best_val_loss",
                "final_train_loss",
                "train_seconds",
                "steps_per_s",
                "stopped_early",
            )
        },
        "gate": {"promoted": result.get("promoted"), "reasons": result.get("reasons")},
        "comparison": result.get("comparison"),
        "reproduce": "scripts/train-grounded-model.sh",
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    shutil.copytree(run / "adapter", staging / "adapter")
    half_precision(staging / "adapter" / "adapter_model.safetensors")
    (staging / "adapter" / "README.md").unlink(missing_ok=True)  # PEFT's empty model card
    config_path = staging / "adapter" / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base.name  # not the training machine's cache path
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copy(run / "loss_curve.svg", staging / "loss_curve.svg")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir


def half_precision(path: Path) -> None:
    """The adapter's weights stored as float16: half the size in the repository, and the
    merge into the base (in float32) differs by less than the base's own quantization."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(path))
    save_file({k: v.astype(np.float16) for k, v in weights.items()}, str(path))


# How the default grounded model is trained (the run's own config is kept in its manifest).
# LoRA on every projection: the model must learn to copy and to decline, not only to reword.
GROUNDED_TRAINING: dict[str, Any] = {
    "method": "lora",
    "r": 16,
    "alpha": 32,
    "dropout": 0.05,
    "target_modules": [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ],
    "epochs": 1,
    "learning_rate": 3e-4,
    "warmup_steps": 10,
    "max_seq_len": 640,
    "batch_size": 4,
    "grad_accumulation": 2,
    "eval_every": 60,
    "early_stopping_patience": 3,
    "precision": "auto",
}


def token_counter(model_path: Path) -> Callable[[str], int]:
    """Tokens of a text as the served model counts them (its vocabulary only, no weights)."""
    from llama_cpp import Llama

    vocab = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
    return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))
