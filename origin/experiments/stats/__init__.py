"""Experiment statistics: pure functions over counts and sums, one concept per module.

- `proportions`: Wilson interval of a rate, fixed-horizon two-proportion comparison;
- `srm`: the sample-ratio-mismatch chi-square test;
- `moments`: per-variant sums of a metric and covariate, the (CUPED, delta-method) effect;
- `sequential`: always-valid confidence sequences and p-values;
- `corrections`: Holm and Benjamini-Hochberg adjusted p-values;
- `analysis`: one metric, every challenger against control;
- `decision`: the verdict and its reason;
- `power`: sample size and duration for a minimum detectable effect.

Never any I/O; distributions and root finding come from scipy.
"""

from __future__ import annotations

from origin.experiments.stats.proportions import (
    DEFAULT_CONFIDENCE,
    Comparison,
    Interval,
    SeriesPoint,
    compare,
    wilson,
    z_value,
)
from origin.experiments.stats.srm import SRM_ALPHA, SampleRatio, chi_square_sf, sample_ratio

__all__ = [
    "DEFAULT_CONFIDENCE",
    "SRM_ALPHA",
    "Comparison",
    "Interval",
    "SampleRatio",
    "SeriesPoint",
    "chi_square_sf",
    "compare",
    "sample_ratio",
    "wilson",
    "z_value",
]
