"""Confidence sequences and always-valid p-values against GrowthBook's stats engine.

Reference values: gbstats 0.8.0 (PyPI), ``SequentialTwoSidedTTest(stat_a, stat_b,
SequentialConfig(difference_type=..., sequential_tuning_parameter=...)).compute_result()``, which
implements eq. 9 / 155 / 161 of Waudby-Smith et al. (arXiv:2103.06476v7); the continuous case is
the fixture of GrowthBook's own test suite (sums 1396.87 / 2422.7). gbstats gives a proportion
the variance p(1 - p) where `Moments` uses the sample variance (n - 1), hence the 1e-3 relative
tolerance on proportions and exact agreement on means.
"""

from __future__ import annotations

import pytest

from origin.experiments.stats.moments import Moments, effect
from origin.experiments.stats.sequential import confidence_sequence, half_width, p_value

REFERENCE = [
    # control, challenger, tuning, kind, gbstats (estimate, ci low, ci high, p), rel tolerance
    (
        Moments.binary(1396, 3000), Moments.binary(2422, 3461), 5000, "absolute",
        (0.23446441298276027, 0.19804879693925878, 0.2708800290262618, 6.300128463364954e-76),
        1e-3,
    ),
    (
        Moments.binary(1396, 3000), Moments.binary(2422, 3461), 5000, "relative",
        (0.5038633516821496, 0.4009784966859415, 0.6067482066783577, 5.174716682839852e-44),
        1e-3,
    ),
    (
        Moments(3000, 1396.87, 52377.9767), Moments(3461, 2422.7, 134698.29), 1000, "absolute",
        (0.23437666666666668, -0.17908917909394972, 0.6478425124272831, 1.0),
        1e-9,
    ),
    (
        Moments(3000, 1396.87, 52377.9767), Moments(3461, 2422.7, 134698.29), 1000, "relative",
        (0.5033610858562358, -0.5584405051077315, 1.5651626768202032, 1.0),
        1e-9,
    ),
    (
        Moments.binary(100, 1000), Moments.binary(125, 1000), 5000, "absolute",
        (0.024999999999999994, -0.019107827143641412, 0.0691078271436414, 0.6203742856813624),
        2e-3,
    ),
    (
        Moments.binary(100, 1000), Moments.binary(125, 1000), 5000, "relative",
        (0.24999999999999994, -0.2439128418452035, 0.7439128418452035, 0.789727381571864),
        2e-3,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "tuning", "kind", "want", "rel"), REFERENCE)
def test_matches_gbstats(
    a: Moments,
    b: Moments,
    tuning: int,
    kind: str,
    want: tuple[float, float, float, float],
    rel: float,
) -> None:
    e = effect(a, b)
    if kind == "absolute":
        estimate, variance = e.difference, e.difference_variance
    else:
        assert e.relative is not None
        assert e.relative_variance is not None
        estimate, variance = e.relative, e.relative_variance
    cs = confidence_sequence(estimate, variance, e.n, 0.05, tuning)
    p = p_value(estimate, variance, e.n, 0.05, tuning)
    assert estimate == pytest.approx(want[0], rel=1e-12)
    assert cs.low == pytest.approx(want[1], rel=rel)
    assert cs.high == pytest.approx(want[2], rel=rel)
    assert p == pytest.approx(want[3], rel=rel)


def test_the_sequence_is_wider_than_the_fixed_interval_and_narrows_with_data() -> None:
    widths = [half_width(1.0, n, 0.05) for n in (100, 1_000, 10_000, 100_000)]
    assert widths == sorted(widths, reverse=True)
    for n, w in zip((100, 1_000, 10_000, 100_000), widths, strict=True):
        assert w > 1.959964 / n**0.5  # always wider than the fixed-horizon 95 % half-width


@pytest.mark.parametrize("estimate", [0.0, 0.01, 0.02, 0.03, 0.05, -0.04])
def test_p_value_below_alpha_exactly_when_the_sequence_excludes_zero(estimate: float) -> None:
    variance, n = 0.0001, 20_000
    cs = confidence_sequence(estimate, variance, n, 0.05)
    excludes = cs.low > 0 or cs.high < 0
    assert (p_value(estimate, variance, n, 0.05) < 0.05) == excludes


def test_no_data_is_no_evidence() -> None:
    assert p_value(0.3, 0.0, 0, 0.05) == 1.0
    assert confidence_sequence(0.3, 0.1, 0, 0.05).high == float("inf")
