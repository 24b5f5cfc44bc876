"""Sufficient statistics of one variant for one metric, and the effect of a challenger.

A metric is an outcome per exposed visitor: 0/1 for a conversion (purchase, add to cart, click), an
amount for revenue. Everything the analysis needs is in a handful of sums per variant (`Moments`):
the number of visitors, the sums of the outcome and of its square, and, for CUPED, the sums of the
pre-exposure covariate, of its square and of its product with the outcome. `effect` turns two
variants' moments into the difference of means and the relative lift, each with the variance of
its estimator (delta method for the ratio, Deng et al. 2018, "Applying the Delta Method in
Metric Analytics", KDD), optionally adjusted by a CUPED coefficient `theta` (Deng, Xu, Kohavi and
Walker 2013, "Improving the Sensitivity of Online Controlled Experiments by Utilizing
Pre-Experiment Data", WSDM). Pure functions over numbers, never I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Moments:
    """Sums over one variant's exposed visitors of outcome y and covariate x."""

    n: float
    sum_y: float
    sum_yy: float
    sum_x: float = 0.0
    sum_xx: float = 0.0
    sum_xy: float = 0.0

    @classmethod
    def binary(cls, successes: float, n: float) -> Moments:
        """A 0/1 outcome without a covariate (y * y = y)."""
        if n < 0 or not 0 <= successes <= max(n, 0):
            raise ValueError(f"need 0 <= successes <= visitors, got {successes}/{n}")
        return cls(n, successes, successes)

    @property
    def mean(self) -> float:
        return self.sum_y / self.n if self.n else 0.0

    @property
    def mean_x(self) -> float:
        return self.sum_x / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance of y (n - 1 denominator); 0 with fewer than two visitors."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.sum_yy - self.sum_y * self.sum_y / self.n) / (self.n - 1))

    @property
    def variance_x(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.sum_xx - self.sum_x * self.sum_x / self.n) / (self.n - 1))

    @property
    def covariance(self) -> float:
        """Sample covariance of x and y."""
        if self.n < 2:
            return 0.0
        return (self.sum_xy - self.sum_x * self.sum_y / self.n) / (self.n - 1)


def cuped_theta(variants: Sequence[Moments]) -> float:
    """The CUPED coefficient cov(x, y) / var(x), pooled within variants; 0 without covariate
    variation (then CUPED changes nothing)."""
    cov = sum(m.covariance * (m.n - 1) for m in variants if m.n >= 2)
    var = sum(m.variance_x * (m.n - 1) for m in variants if m.n >= 2)
    return cov / var if var > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Effect:
    """A challenger against control on one metric."""

    control_mean: float
    challenger_mean: float
    difference: float
    """Challenger minus control (CUPED-adjusted when theta != 0)."""
    difference_variance: float
    """Variance of the difference estimator."""
    relative: float | None
    """Difference / control mean; None when control's mean is 0."""
    relative_variance: float | None
    n: float
    """Visitors in both variants (the confidence sequence's time)."""
    unadjusted_difference_variance: float
    """The variance without CUPED: variance reduction = 1 - adjusted / unadjusted."""

    @property
    def variance_reduction(self) -> float:
        if self.unadjusted_difference_variance <= 0:
            return 0.0
        return 1.0 - self.difference_variance / self.unadjusted_difference_variance


def _mean_variance(m: Moments, theta: float) -> float:
    """Variance of the (adjusted) mean y - theta * x of one variant."""
    if m.n == 0:
        return 0.0
    unit = m.variance - 2 * theta * m.covariance + theta * theta * m.variance_x
    return max(0.0, unit) / m.n


def effect(control: Moments, challenger: Moments, theta: float = 0.0) -> Effect:
    """The difference and relative lift of `challenger` over `control`."""
    a, b = control, challenger
    difference = (b.mean - a.mean) - theta * (b.mean_x - a.mean_x)
    var_a, var_b = _mean_variance(a, theta), _mean_variance(b, theta)
    variance = var_a + var_b
    unadjusted = _mean_variance(a, 0.0) + _mean_variance(b, 0.0)
    relative = relative_variance = None
    if a.mean != 0:
        # r = D / A with D the (adjusted) difference and A control's raw mean:
        # Var r = Var D / A^2 + D^2 Var A / A^4 - 2 D Cov(D, A) / A^3,
        # Cov(D, A) = -Cov(mean y_a - theta mean x_a, mean y_a) = -(var_y - theta cov) / n_a.
        mean_a = a.mean
        var_mean_a = a.variance / a.n if a.n else 0.0
        cov_d_a = -(a.variance - theta * a.covariance) / a.n if a.n else 0.0
        relative = difference / mean_a
        relative_variance = max(
            0.0,
            variance / mean_a**2
            + difference**2 * var_mean_a / mean_a**4
            - 2 * difference * cov_d_a / mean_a**3,
        )
    return Effect(
        control_mean=a.mean,
        challenger_mean=b.mean - theta * (b.mean_x - a.mean_x),
        difference=difference,
        difference_variance=variance,
        relative=relative,
        relative_variance=relative_variance,
        n=a.n + b.n,
        unadjusted_difference_variance=unadjusted,
    )
