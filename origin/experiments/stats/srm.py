"""Sample-ratio mismatch: Pearson's chi-square test of exposures against configured weights.

p < `SRM_ALPHA` means the split is broken (a bug in assignment or tracking), and no verdict may be
given until it is explained. Pure; the chi-square tail is scipy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import chi2

SRM_ALPHA = 0.001
"""Sample-ratio-mismatch threshold (the customary strict level: false alarms stay rare)."""


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """Pearson's chi-square test of observed exposures against configured weights."""

    chi_square: float
    degrees_of_freedom: int
    p_value: float
    expected: tuple[float, ...]
    """Expected exposures per variant, in variant order."""

    @property
    def mismatch(self) -> bool:
        """True when the split is very unlikely under the configured weights (p < 0.001)."""
        return self.p_value < SRM_ALPHA


def chi_square_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with `dof` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if x <= 0:
        return 1.0
    return float(chi2.sf(x, dof))


def sample_ratio(observed: Sequence[int], weights: Sequence[float]) -> SampleRatio:
    """Test `observed` exposure counts against `weights` (normalised; zero weights skipped)."""
    if len(observed) != len(weights) or not observed:
        raise ValueError("need one observed count per weight")
    total_weight = sum(weights)
    if total_weight <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"weights must be >= 0 with a positive sum, got {list(weights)}")
    n = sum(observed)
    expected = tuple(n * w / total_weight for w in weights)
    cells = [(o, e) for o, e in zip(observed, expected, strict=True) if e > 0]
    dof = len(cells) - 1
    if n == 0 or dof < 1:
        return SampleRatio(0.0, max(dof, 0), 1.0, expected)
    statistic = sum((o - e) ** 2 / e for o, e in cells)
    return SampleRatio(statistic, dof, chi_square_sf(statistic, dof), expected)
