"""Summary statistics of timing samples: percentiles by the nearest-rank method.

Standard library only (it also runs inside Pyodide). It never reads clocks itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-quantile (0 < q <= 1) of samples already sorted ascending."""
    if not ordered:
        raise ValueError("percentile of no samples")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of a set of samples, in the samples' unit."""

    count: int
    p50: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 0.50),
            p99=percentile(ordered, 0.99),
            mean=math.fsum(ordered) / len(ordered),
            max=ordered[-1],
        )

    def scaled(self, factor: float) -> Summary:
        """The same summary in another unit (e.g. seconds -> milliseconds with 1000)."""
        return Summary(
            self.count, self.p50 * factor, self.p99 * factor, self.mean * factor, self.max * factor
        )

    def to_dict(self) -> dict[str, float]:
        return {"count": self.count, "p50": self.p50, "p99": self.p99, "mean": self.mean,
                "max": self.max}  # fmt: skip

    @classmethod
    def from_dict(cls, raw: dict[str, float]) -> Summary:
        return cls(int(raw["count"]), raw["p50"], raw["p99"], raw["mean"], raw["max"])
