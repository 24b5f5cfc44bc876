"""Proportions: the Wilson interval of a rate and the fixed-horizon two-proportion comparison.

Pure functions over counts, each table-tested; never any I/O:

- `wilson`: the Wilson score interval of a proportion (good coverage at small counts and at
  0 or 100 %, unlike the Wald interval);
- `compare`: a challenger against control: absolute difference with a Wald interval, relative
  uplift with a log-ratio (delta method) interval, and the two-sided p-value of the pooled
  two-proportion z-test;
- `SeriesPoint`: one bucket of a variant's conversion over time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

DEFAULT_CONFIDENCE = 0.95


def z_value(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.959964 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(norm.ppf(0.5 + confidence / 2))


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson(successes: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson score interval of successes/trials; (0, 1) when there are no trials."""
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return Interval(0.0, 1.0)
    z = z_value(confidence)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Comparison:
    """A challenger against control."""

    difference: float
    """Absolute difference of conversion rates (challenger - control)."""
    difference_interval: Interval
    uplift: float | None
    """Relative uplift (challenger / control - 1); None when either rate is 0."""
    uplift_interval: Interval | None
    p_value: float
    """Two-sided p-value of the pooled two-proportion z-test (1.0 without data)."""


def compare(
    control: tuple[int, int],
    challenger: tuple[int, int],
    confidence: float = DEFAULT_CONFIDENCE,
) -> Comparison:
    """Compare (conversions, exposures) of a challenger with control's."""
    (c_conv, c_n), (t_conv, t_n) = control, challenger
    for conv, n in (control, challenger):
        if n < 0 or not 0 <= conv <= max(n, 0):
            raise ValueError(f"need 0 <= conversions <= exposures, got {conv}/{n}")
    if c_n == 0 or t_n == 0:
        return Comparison(0.0, Interval(-1.0, 1.0), None, None, 1.0)
    z = z_value(confidence)
    p_c, p_t = c_conv / c_n, t_conv / t_n
    difference = p_t - p_c
    se = math.sqrt(p_c * (1 - p_c) / c_n + p_t * (1 - p_t) / t_n)
    diff_interval = Interval(max(-1.0, difference - z * se), min(1.0, difference + z * se))
    uplift: float | None = None
    uplift_interval: Interval | None = None
    if p_c > 0 and p_t > 0:
        log_ratio = math.log(p_t / p_c)
        se_log = math.sqrt((1 - p_t) / (t_n * p_t) + (1 - p_c) / (c_n * p_c))
        uplift = p_t / p_c - 1
        uplift_interval = Interval(
            math.exp(log_ratio - z * se_log) - 1, math.exp(log_ratio + z * se_log) - 1
        )
    pooled = (c_conv + t_conv) / (c_n + t_n)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / c_n + 1 / t_n))
    tail = float(norm.sf(abs(difference) / pooled_se)) if pooled_se > 0 else 0.5
    p_value = 2 * tail
    return Comparison(difference, diff_interval, uplift, uplift_interval, min(1.0, p_value))


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """Conversion over time for one variant: one bucket (hour or day) of the chart."""

    bucket: str
    exposures: int
    conversions: int
    cumulative_exposures: int
    cumulative_conversions: int

    @property
    def rate(self) -> float:
        return self.conversions / self.exposures if self.exposures else 0.0

    @property
    def cumulative_rate(self) -> float:
        if not self.cumulative_exposures:
            return 0.0
        return self.cumulative_conversions / self.cumulative_exposures
