"""One metric's analysis: every challenger against control, always-valid and fixed-horizon.

For each challenger: the CUPED-adjusted effect (`moments.effect`), its confidence sequence for the
difference and the relative lift with the always-valid p-value (`sequential`), and the classic
fixed-horizon normal interval and p-value, kept for a single look at a planned sample size and
labelled as such. P-values are adjusted across every comparison of the experiment by the
experiment's correction (`corrections`) in `adjust_family`. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy.stats import norm

from origin.experiments.stats.corrections import Correction, adjust
from origin.experiments.stats.moments import Effect, Moments, cuped_theta, effect
from origin.experiments.stats.proportions import Interval
from origin.experiments.stats.sequential import DEFAULT_TUNING, confidence_sequence, p_value


@dataclass(frozen=True, slots=True)
class Inference:
    """Intervals of the difference and of the relative lift, and a p-value."""

    difference: Interval
    relative: Interval | None
    p_value: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """A challenger against control on one metric."""

    variant: str
    effect: Effect
    sequential: Inference
    """Always-valid: safe to read at any time."""
    fixed_horizon: Inference
    """Valid for one look at a sample size fixed in advance only."""
    adjusted_p_value: float
    """The always-valid p-value after the experiment's multiple-comparison correction."""


@dataclass(frozen=True, slots=True)
class MetricAnalysis:
    metric: str
    means: tuple[float, ...]
    """Raw mean per variant, in variant order."""
    visitors: tuple[float, ...]
    theta: float
    """CUPED coefficient used (0: no adjustment)."""
    comparisons: tuple[Comparison, ...]

    @property
    def variance_reduction(self) -> float:
        """Mean variance reduction CUPED achieved over the comparisons."""
        if not self.comparisons:
            return 0.0
        return sum(c.effect.variance_reduction for c in self.comparisons) / len(self.comparisons)


def _fixed(estimate: float, variance: float, alpha: float) -> tuple[Interval, float]:
    if variance <= 0:
        return Interval(estimate, estimate), 1.0
    se = math.sqrt(variance)
    z = float(norm.ppf(1 - alpha / 2))
    return Interval(estimate - z * se, estimate + z * se), float(2 * norm.sf(abs(estimate) / se))


def _inference(e: Effect, alpha: float, tuning: float) -> tuple[Inference, Inference]:
    seq_diff = confidence_sequence(e.difference, e.difference_variance, e.n, alpha, tuning)
    seq_rel = None
    fix_rel = None
    if e.relative is not None and e.relative_variance is not None:
        seq_rel = confidence_sequence(e.relative, e.relative_variance, e.n, alpha, tuning)
        fix_rel, _ = _fixed(e.relative, e.relative_variance, alpha)
    fix_diff, fix_p = _fixed(e.difference, e.difference_variance, alpha)
    seq_p = p_value(e.difference, e.difference_variance, e.n, alpha, tuning)
    return Inference(seq_diff, seq_rel, seq_p), Inference(fix_diff, fix_rel, fix_p)


def analyse_metric(
    metric: str,
    variant_ids: Sequence[str],
    moments: Sequence[Moments],
    *,
    alpha: float = 0.05,
    cuped: bool = True,
    tuning: float = DEFAULT_TUNING,
) -> MetricAnalysis:
    """Compare every challenger (index >= 1) with control (index 0) on one metric."""
    if len(variant_ids) != len(moments) or len(moments) < 2:
        raise ValueError("need moments for control and at least one challenger")
    theta = cuped_theta(moments) if cuped else 0.0
    comparisons = []
    for vid, m in zip(variant_ids[1:], moments[1:], strict=True):
        e = effect(moments[0], m, theta)
        seq, fix = _inference(e, alpha, tuning)
        comparisons.append(Comparison(vid, e, seq, fix, seq.p_value))
    return MetricAnalysis(
        metric, tuple(m.mean for m in moments), tuple(m.n for m in moments), theta,
        tuple(comparisons),
    )  # fmt: skip


def adjust_family(
    analyses: Sequence[MetricAnalysis], correction: Correction
) -> list[MetricAnalysis]:
    """Adjust every comparison's always-valid p-value across the whole family."""
    flat = [c.sequential.p_value for a in analyses for c in a.comparisons]
    adjusted = iter(adjust(flat, correction))
    return [
        replace(
            a, comparisons=tuple(replace(c, adjusted_p_value=next(adjusted)) for c in a.comparisons)
        )
        for a in analyses
    ]
