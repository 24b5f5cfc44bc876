"""Experiment results math: conversion rates, intervals, uplift, sample-ratio mismatch.

Pure functions over counts, each table-tested; stdlib only, and never any I/O:

- `wilson`: the Wilson score interval of a proportion (good coverage at small counts and at
  0 or 100 %, unlike the Wald interval);
- `compare`: a challenger against control: absolute difference with a Wald interval, relative
  uplift with a log-ratio (delta method) interval, and the two-sided p-value of the pooled
  two-proportion z-test;
- `sample_ratio`: Pearson's chi-square test of the exposure counts against the configured
  weights; p < `SRM_ALPHA` means the split is broken (a bug in assignment or tracking), and
  results must not be trusted until it is explained;
- `chi_square_sf`: the chi-square survival function via the regularized upper incomplete gamma
  function (series / continued fraction, Numerical Recipes 6.2).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

SRM_ALPHA = 0.001
"""Sample-ratio-mismatch threshold (the customary strict level: false alarms stay rare)."""
DEFAULT_CONFIDENCE = 0.95


def z_value(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.959964 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


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
    tail = 1 - NormalDist().cdf(abs(difference) / pooled_se) if pooled_se > 0 else 0.5
    p_value = 2 * tail
    return Comparison(difference, diff_interval, uplift, uplift_interval, min(1.0, p_value))


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


def chi_square_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square with `dof` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2, x / 2)


_EPS = 1e-15
_MAX_ITERATIONS = 10_000
_TINY = 1e-300


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x)."""
    if x < a + 1:
        return max(0.0, 1.0 - _gamma_p_series(a, x))
    return _gamma_q_fraction(a, x)


def _gamma_p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(_MAX_ITERATIONS):
        denominator += 1
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_fraction(a: float, x: float) -> float:
    """Lentz's continued fraction for Q(a, x), valid for x >= a + 1."""
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


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
