"""The training configuration: one dataclass that validates itself (PEFT's style)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

Method = Literal["lora", "prefix", "full"]
METHODS: tuple[str, ...] = ("lora", "prefix", "full")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
QLORA_MODES: tuple[str, ...] = ("auto", "on", "off")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


# How an exported GGUF stores its weights (none: float32). One list for the settings, the
# training page and the export.
Quantization = Literal["none", "f16", "q8_0", "q4_k_m"]
QUANTIZATIONS: tuple[Quantization, ...] = get_args(Quantization)

# Inclusive bounds of what a run may ask for. The config checks them below; the product's
# settings (learning.*) and the training API (web/training_schemas.py) declare theirs from here.
BOUNDS: dict[str, tuple[int, int]] = {
    "r": (1, 256),
    "alpha": (1, 1024),
    "epochs": (1, 100),
    "batch_size": (1, 256),
    "max_seq_len": (32, 8192),
}
MAX_LEARNING_RATE = 0.1  # learning_rate lies in (0, MAX_LEARNING_RATE]


class TrainingError(Exception):
    """A run that cannot start (no examples, every example too long, unknown model)."""


@dataclass(frozen=True)
class TrainingConfig:
    """How one run trains. Defaults suit SmolLM2-135M on two CPU cores."""

    method: Method = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    num_virtual_tokens: int = 16  # prefix tuning only
    learning_rate: float = 2e-4
    warmup_steps: int = 2
    epochs: int = 2
    max_steps: int = 0  # 0: as many as the epochs take
    batch_size: int = 4
    grad_accumulation: int = 1
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0
    max_seq_len: int = 512
    early_stopping_patience: int = 2  # evaluations without improvement; 0: off
    eval_every: int = 0  # steps between validation passes; 0: once per epoch
    seed: int = 0
    gradient_checkpointing: bool = False
    torch_threads: int = 2
    # auto: a CUDA GPU when torch sees one, else the CPU.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # QLoRA: the frozen base in 4-bit NF4 (bitsandbytes) under the LoRA weights. auto: when
    # training on a GPU with bitsandbytes installed; on: required (the run fails without).
    qlora: Literal["auto", "on", "off"] = "auto"
    # Compute precision of the forward pass (the trained weights stay float32): bf16
    # autocast is ~1.7x faster on a CPU with AVX512-BF16 or AMX (measured: 7 s against 12 s
    # a step of 4 x 500 tokens for SmolLM2-135M with LoRA on every projection). auto: bf16
    # where the CPU or GPU computes it natively, else fp32.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        checks = [
            self._within("r"),
            self._within("alpha"),
            (0 <= self.dropout < 1, "dropout must be in [0, 1)"),
            (bool(self.target_modules), "target_modules must not be empty"),
            (1 <= self.num_virtual_tokens <= 256, "num_virtual_tokens must be in [1, 256]"),
            (
                0 < self.learning_rate <= MAX_LEARNING_RATE,
                f"learning_rate must be in (0, {MAX_LEARNING_RATE}]",
            ),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            self._within("epochs"),
            (self.max_steps >= 0, "max_steps must be >= 0"),
            self._within("batch_size"),
            (1 <= self.grad_accumulation <= 256, "grad_accumulation must be in [1, 256]"),
            (self.max_grad_norm > 0, "max_grad_norm must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            self._within("max_seq_len"),
            (self.early_stopping_patience >= 0, "early_stopping_patience must be >= 0"),
            (self.eval_every >= 0, "eval_every must be >= 0"),
            (1 <= self.torch_threads <= 256, "torch_threads must be in [1, 256]"),
            (self.device in DEVICES, f"device must be one of {DEVICES}"),
            (self.qlora in QLORA_MODES, f"qlora must be one of {QLORA_MODES}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.qlora != "on" or self.method == "lora", "qlora needs method 'lora'"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        # Lists arrive from JSON (job params): keep the dataclass hashable and frozen.
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def _within(self, name: str) -> tuple[bool, str]:
        low, high = BOUNDS[name]
        return low <= getattr(self, name) <= high, f"{name} must be in [{low}, {high}]"

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["target_modules"] = list(self.target_modules)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> TrainingConfig:
        """A config from job params; unknown keys are an error, not silently dropped."""
        known = {f.name for f in fields(cls)}
        unknown = set(record) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**record)
