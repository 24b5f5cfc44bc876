"""Always-valid inference: asymptotic confidence sequences, safe under continuous peeking.

A confidence sequence (CS) holds the true effect at *every* sample size simultaneously with
probability at least 1 - alpha, so a marketer may look every day and stop whenever the interval
excludes zero without inflating the false-positive rate. This is the asymptotic CS of
Waudby-Smith, Arnold, Wu, Howard and Ramdas, "Time-uniform central limit theory and asymptotic
confidence sequences", Annals of Statistics (2024; arXiv:2103.06476, Theorem 2.2), as GrowthBook's
stats engine applies it to a two-sample difference (``gbstats``: the unit variance is the
estimator's variance times the total sample size n, and rho is tuned to be tightest near
`DEFAULT_TUNING` visitors):

    half-width = sqrt(s2) * sqrt( 2 (n rho^2 + 1) / (n^2 rho^2) * log( sqrt(n rho^2 + 1) / alpha ) )
    rho        = sqrt( (-2 log alpha + log(-2 log alpha + 1)) / tuning )

The always-valid p-value is the smallest alpha whose sequence (same rho) excludes 0; it inverts
the formula in closed form. Pure functions over numbers, never I/O.
"""

from __future__ import annotations

import math

from origin.experiments.stats.proportions import Interval

DEFAULT_TUNING = 5000.0
"""The sample size the sequence is tightest around (GrowthBook's default)."""


def rho(alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if tuning <= 0:
        raise ValueError(f"tuning must be a positive sample size, got {tuning}")
    log_a = -2 * math.log(alpha)
    return math.sqrt((log_a + math.log(log_a + 1)) / tuning)


def half_width(
    unit_variance: float, n: float, alpha: float, tuning: float = DEFAULT_TUNING
) -> float:
    """Half-width of the CS after n observations with per-observation variance s2."""
    if n <= 0:
        return math.inf
    r2 = rho(alpha, tuning) ** 2
    return math.sqrt(unit_variance) * math.sqrt(
        2 * (n * r2 + 1) / (n * n * r2) * math.log(math.sqrt(n * r2 + 1) / alpha)
    )


def confidence_sequence(
    estimate: float,
    estimator_variance: float,
    n: float,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
) -> Interval:
    """The CS around `estimate` whose estimator has variance `estimator_variance` at n."""
    h = half_width(estimator_variance * n, n, alpha, tuning)
    return Interval(estimate - h, estimate + h)


def p_value(
    estimate: float,
    estimator_variance: float,
    n: float,
    alpha: float,
    tuning: float = DEFAULT_TUNING,
) -> float:
    """Always-valid p-value: the least level whose CS (rho tuned at `alpha`) excludes 0."""
    if n <= 0 or estimator_variance <= 0:
        return 1.0
    r2 = rho(alpha, tuning) ** 2
    s2 = estimator_variance * n
    exponent = estimate * estimate * n * n * r2 / (2 * s2 * (n * r2 + 1))
    return min(1.0, math.sqrt(n * r2 + 1) * math.exp(-exponent))
