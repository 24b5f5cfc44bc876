"""Multiple comparisons: adjusted p-values for several challengers and metrics.

- Holm (1979), "A simple sequentially rejective multiple test procedure": controls the
  family-wise error rate (the chance of any false "better" or "worse");
- Benjamini and Hochberg (1995), "Controlling the false discovery rate": controls the expected
  share of false discoveries, more powerful with many comparisons.

Both return adjusted p-values in input order, as R's ``p.adjust`` does; a comparison is
significant when its adjusted p-value is at most alpha. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bh")
CORRECTION_NAMES = {
    "holm": "Holm (family-wise error)",
    "bh": "Benjamini-Hochberg (false discovery rate)",
}


def holm(p_values: Sequence[float]) -> list[float]:
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for k, i in enumerate(order):
        rank = m - k
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def adjust(p_values: Sequence[float], method: Correction) -> list[float]:
    if method == "holm":
        return holm(p_values)
    if method == "bh":
        return benjamini_hochberg(p_values)
    raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
