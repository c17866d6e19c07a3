"""TrainingConfig validates itself; the learning-rate schedule warms up then decays."""

from __future__ import annotations

import pytest

from training.base_model import placement
from training.config import TrainingConfig, TrainingError
from training.loop import lr_at
from training.loss_curve import loss_curve_svg


@pytest.mark.parametrize(
    "values",
    [
        {"method": "qlora9"},
        {"r": 0},
        {"dropout": 1.0},
        {"learning_rate": 0},
        {"max_seq_len": 8},
        {"target_modules": []},
        {"epochs": 0},
        {"device": "tpu"},
        {"qlora": "maybe"},
        {"qlora": "on", "method": "full"},
    ],
)
def test_invalid_configs_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrainingConfig(**values)  # type: ignore[arg-type]


def test_json_round_trip_and_unknown_keys() -> None:
    config = TrainingConfig(method="full", target_modules=["q_proj"], epochs=3)  # type: ignore[arg-type]
    assert config.target_modules == ("q_proj",)
    assert TrainingConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown training settings: rank"):
        TrainingConfig.from_json({"rank": 4})


def test_warmup_then_cosine() -> None:
    config = TrainingConfig(learning_rate=1e-3, warmup_steps=4)
    rates = [lr_at(step, 20, config) for step in range(20)]
    assert rates[0] < rates[1] < rates[3] < rates[4] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(rates[4:], rates[5:], strict=False))
    assert rates[-1] >= 1e-4 * 0.99  # decays to a tenth, not to zero


def test_loss_curve_svg_draws_both_lines() -> None:
    svg = loss_curve_svg(
        [{"step": 1, "train_loss": 2.0}, {"step": 2, "train_loss": 1.0, "val_loss": 1.5}]
    )
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "2 steps" in svg


def test_placement_on_a_machine_without_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this checks the CPU-only answer; a GPU machine trains on cuda")
    auto = placement(TrainingConfig())
    assert auto.device == "cpu" and not auto.four_bit  # QLoRA auto: never on the CPU
    with pytest.raises(TrainingError, match="no CUDA GPU"):
        placement(TrainingConfig(device="cuda"))
    with pytest.raises(TrainingError, match="QLoRA needs"):
        placement(TrainingConfig(qlora="on"))
