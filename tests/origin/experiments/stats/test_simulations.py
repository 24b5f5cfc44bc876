"""Proofs by simulation: what the statistics promise, checked on data with a known truth.

- A/A, one look a day for 30 days: the always-valid method's false-positive rate (any day's
  sequence excluding 0) stays at most 5 %, while the naive fixed-horizon interval read the same
  way exceeds it;
- A/B with a known effect: the fixed-horizon interval covers the truth about 95 % of the time at
  its planned sample size, and the confidence sequence covers it at every look at least 95 % of
  the time; the power estimate matches the simulated power;
- CUPED on correlated data: the variance reduction matches theory (rho^2) and the estimate is
  unbiased.

Short by default (CI); ``SHELFEDGE_SIM_FULL=1`` runs ten times as many simulations (see
docs/experiments.md). Seeds are fixed: a run is reproducible.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from origin.experiments.stats.analysis import analyse_metric
from origin.experiments.stats.moments import Moments, cuped_theta, effect
from origin.experiments.stats.power import (
    fixed_power,
    fixed_sample_size,
    sequential_power,
    sequential_sample_size,
)
from origin.experiments.stats.sequential import confidence_sequence

FULL = os.environ.get("SHELFEDGE_SIM_FULL") == "1"
SCALE = 10 if FULL else 1
DAYS = 30
DAILY = 500
"""Visitors per variant per day."""
IDS = ["control", "b"]
Z_95 = 1.959963984540054
pytestmark = pytest.mark.timeout(1800 if FULL else 120)


def _daily_counts(rng: np.random.Generator, sims: int, p_a: float, p_b: float) -> np.ndarray:
    """Cumulative (conversions a, conversions b) per simulation and day."""
    a = rng.binomial(DAILY, p_a, size=(sims, DAYS)).cumsum(axis=1)
    b = rng.binomial(DAILY, p_b, size=(sims, DAYS)).cumsum(axis=1)
    return np.stack([a, b], axis=-1)


def _peek(counts: np.ndarray) -> tuple[float, float]:
    """(always-valid, fixed-horizon) share of simulations declared significant on any day."""
    sequential = naive = 0
    for sim in counts:
        seq_hit = fix_hit = False
        for day, (ca, cb) in enumerate(sim, start=1):
            n = DAILY * day
            e = effect(Moments.binary(int(ca), n), Moments.binary(int(cb), n))
            seq = confidence_sequence(e.difference, e.difference_variance, e.n, 0.05)
            half = Z_95 * e.difference_variance**0.5
            seq_hit = seq_hit or seq.low > 0 or seq.high < 0
            fix_hit = fix_hit or abs(e.difference) > half
        sequential += seq_hit
        naive += fix_hit
    return sequential / len(counts), naive / len(counts)


def test_aa_daily_peeking_keeps_the_false_positive_rate() -> None:
    sims = 2000 * SCALE
    counts = _daily_counts(np.random.default_rng(20260101), sims, 0.05, 0.05)
    always_valid, naive = _peek(counts)
    print(
        f"A/A {sims} sims x {DAYS} daily looks: always-valid {always_valid:.2%}, naive {naive:.2%}"
    )
    assert always_valid <= 0.05
    assert naive > 0.10  # peeking at a fixed-horizon interval: the 5 % promise is broken


def test_ab_coverage_of_the_fixed_interval_and_of_the_sequence() -> None:
    sims = 1000 * SCALE
    p_a, p_b = 0.05, 0.06
    truth = p_b - p_a
    counts = _daily_counts(np.random.default_rng(20260102), sims, p_a, p_b)
    fixed_cover = sequence_cover = 0
    for sim in counts:
        always = True
        for day, (ca, cb) in enumerate(sim, start=1):
            n = DAILY * day
            e = effect(Moments.binary(int(ca), n), Moments.binary(int(cb), n))
            cs = confidence_sequence(e.difference, e.difference_variance, e.n, 0.05)
            always = always and cs.low <= truth <= cs.high
        sequence_cover += always
        half = Z_95 * e.difference_variance**0.5  # the last day: the planned horizon
        fixed_cover += e.difference - half <= truth <= e.difference + half
    print(f"A/B {sims} sims: fixed {fixed_cover / sims:.2%}, sequence {sequence_cover / sims:.2%}")
    assert abs(fixed_cover / sims - 0.95) <= 0.02
    assert sequence_cover / sims >= 0.95


@pytest.mark.parametrize("method", ["fixed", "sequential"])
def test_power_estimate_matches_simulated_power(method: str) -> None:
    sims = 1000 * SCALE
    base, mde = 0.05, 0.15
    if method == "fixed":
        total = fixed_sample_size(base, mde)
        estimate = fixed_power(base, mde, total)
    else:
        total = sequential_sample_size(base, mde)
        estimate = sequential_power(base, mde, total)
    n = round(total / 2)
    rng = np.random.default_rng(20260103)
    ca = rng.binomial(n, base, size=sims)
    cb = rng.binomial(n, base * (1 + mde), size=sims)
    hits = 0
    for a_conv, b_conv in zip(ca, cb, strict=True):
        c = analyse_metric(
            "purchase", IDS, [Moments.binary(int(a_conv), n), Moments.binary(int(b_conv), n)],
            cuped=False,
        ).comparisons[0]  # fmt: skip
        interval = c.fixed_horizon.difference if method == "fixed" else c.sequential.difference
        hits += interval.low > 0 or interval.high < 0
    print(
        f"power ({method}, n = {n} per arm): estimated {estimate:.3f}, simulated {hits / sims:.3f}"
    )
    assert abs(hits / sims - estimate) <= 0.04


def _moments(y: np.ndarray, x: np.ndarray) -> Moments:
    return Moments(
        len(y), float(y.sum()), float((y * y).sum()), float(x.sum()), float((x * x).sum()),
        float((x * y).sum()),
    )  # fmt: skip


def test_cuped_reduces_variance_as_theory_says_without_bias() -> None:
    sims, n, lift = 300 * SCALE, 4000, 0.4
    rng = np.random.default_rng(20260104)
    rho = 0.6
    reductions, estimates, raw = [], [], []
    for _ in range(sims):
        groups = []
        for shift in (0.0, lift):
            x = rng.normal(5.0, 2.0, n)
            noise = rng.normal(0.0, 2.0 * np.sqrt(1 - rho**2) / rho, n)
            y = 10.0 + x + noise + shift  # corr(x, y) = rho
            groups.append(_moments(y, x))
        theta = cuped_theta(groups)
        e = effect(groups[0], groups[1], theta)
        reductions.append(e.variance_reduction)
        estimates.append(e.difference)
        raw.append(effect(groups[0], groups[1]).difference)
    reduction = float(np.mean(reductions))
    bias = float(np.mean(estimates)) - lift
    spread = float(np.std(estimates)) / np.sqrt(sims)
    print(
        f"CUPED {sims} sims: variance reduction {reduction:.3f} (theory {rho**2:.3f}), "
        f"bias {bias:+.4f}"
    )
    assert abs(reduction - rho**2) <= 0.02
    assert abs(bias) <= 4 * spread
    assert np.std(estimates) < np.std(raw) * (1 - rho**2) ** 0.5 * 1.1
