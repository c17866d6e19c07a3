"""A run's loss per step as a small standalone SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
