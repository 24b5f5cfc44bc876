"""Results math, table-driven against reference values.

References: Wilson intervals from the closed form (10/100 gives [0.0552, 0.1744], as statsmodels'
``proportion_confint(method="wilson")`` does); chi-square critical values from the standard
tables (3.841 at 1 degree of freedom is p = 0.05); two-proportion z-test p-values as
erfc(|z| / sqrt 2) with the pooled standard error; Wald and log-ratio intervals by hand below.
"""

from __future__ import annotations

import math

import pytest

from origin.experiments.stats import (
    SRM_ALPHA,
    SeriesPoint,
    chi_square_sf,
    compare,
    sample_ratio,
    wilson,
    z_value,
)

WILSON = [
    # successes, trials, low, high (95 %)
    (10, 100, 0.0552291, 0.1743657),
    (0, 10, 0.0, 0.2775328),
    (10, 10, 0.7224672, 1.0),
    (50, 100, 0.4038315, 0.5961685),
    (1, 1000, 0.0001765, 0.0056426),
    (0, 0, 0.0, 1.0),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON)
def test_wilson_interval(k: int, n: int, low: float, high: float) -> None:
    interval = wilson(k, n)
    assert interval.low == pytest.approx(low, abs=1e-6)
    assert interval.high == pytest.approx(high, abs=1e-6)


def test_wilson_confidence_widens_the_interval() -> None:
    narrow, wide = wilson(30, 200, 0.90), wilson(30, 200, 0.99)
    assert wide.low < narrow.low < 0.15 < narrow.high < wide.high


@pytest.mark.parametrize(("k", "n"), [(-1, 10), (11, 10), (1, -1)])
def test_wilson_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson(k, n)


CHI_SQUARE = [
    # statistic, degrees of freedom, survival p
    (3.841458820694124, 1, 0.05),
    (6.634896601021214, 1, 0.01),
    (10.827566170662733, 1, 0.001),
    (5.991464547107979, 2, 0.05),
    (13.815510557964274, 2, 0.001),
    (7.814727903251178, 3, 0.05),
    (0.454936423119572, 1, 0.5),
    (1.386294361119891, 2, 0.5),
    (18.307038053275146, 10, 0.05),
    (0.0, 4, 1.0),
]


@pytest.mark.parametrize(("x", "dof", "p"), CHI_SQUARE)
def test_chi_square_survival(x: float, dof: int, p: float) -> None:
    assert chi_square_sf(x, dof) == pytest.approx(p, rel=1e-9, abs=1e-12)


def test_chi_square_one_dof_is_the_normal_tail() -> None:
    for z in (0.5, 1.0, 1.96, 3.0, 5.0):
        assert chi_square_sf(z * z, 1) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)


def test_z_value() -> None:
    assert z_value(0.95) == pytest.approx(1.959963984540054)
    with pytest.raises(ValueError, match="confidence"):
        z_value(1.0)


COMPARE = [
    # control (conv, n), challenger (conv, n), difference, uplift, p-value (two-sided)
    ((100, 1000), (120, 1000), 0.02, 0.2, 0.152918),
    ((100, 1000), (100, 1000), 0.0, 0.0, 1.0),
    ((200, 2000), (150, 2000), -0.025, -0.25, 0.005145),
    ((50, 10000), (80, 10000), 0.003, 0.6, 0.008296),
]


@pytest.mark.parametrize(("control", "challenger", "diff", "uplift", "p"), COMPARE)
def test_compare(
    control: tuple[int, int], challenger: tuple[int, int], diff: float, uplift: float, p: float
) -> None:
    c = compare(control, challenger)
    assert c.difference == pytest.approx(diff, abs=1e-12)
    assert c.uplift == pytest.approx(uplift, abs=1e-12)
    assert c.p_value == pytest.approx(p, abs=1e-5)
    assert c.difference_interval.low < diff < c.difference_interval.high or diff == 0.0
    assert c.uplift_interval is not None
    assert c.uplift_interval.low < uplift < c.uplift_interval.high or uplift == 0.0


def test_compare_interval_by_hand() -> None:
    c = compare((100, 1000), (120, 1000))
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.12 * 0.88 / 1000)
    assert c.difference_interval.low == pytest.approx(0.02 - 1.959964 * se, abs=1e-6)
    se_log = math.sqrt(0.88 / 120 + 0.9 / 100)
    assert c.uplift_interval is not None
    assert c.uplift_interval.high == pytest.approx(math.exp(math.log(1.2) + 1.959964 * se_log) - 1)


@pytest.mark.parametrize(
    ("control", "challenger"), [((0, 100), (5, 100)), ((5, 100), (0, 100)), ((0, 0), (1, 10))]
)
def test_compare_without_a_defined_uplift(
    control: tuple[int, int], challenger: tuple[int, int]
) -> None:
    c = compare(control, challenger)
    assert c.uplift is None
    assert c.uplift_interval is None
    assert 0.0 <= c.p_value <= 1.0


SRM = [
    # observed, weights, mismatch?
    ([5000, 5000], [0.5, 0.5], False),
    ([5100, 4900], [0.5, 0.5], False),
    ([5200, 4800], [0.5, 0.5], True),
    ([1000, 9000], [0.1, 0.9], False),
    ([1200, 8800], [0.1, 0.9], True),
    ([2000, 3000, 5000], [0.2, 0.3, 0.5], False),
    ([2000, 2000, 6000], [0.2, 0.3, 0.5], True),
    ([0, 0], [0.5, 0.5], False),
]


@pytest.mark.parametrize(("observed", "weights", "mismatch"), SRM)
def test_sample_ratio_mismatch(observed: list[int], weights: list[float], mismatch: bool) -> None:
    srm = sample_ratio(observed, weights)
    assert srm.mismatch is mismatch
    assert (srm.p_value < SRM_ALPHA) is mismatch
    assert sum(srm.expected) == pytest.approx(sum(observed))


def test_sample_ratio_statistic_by_hand() -> None:
    srm = sample_ratio([5200, 4800], [0.5, 0.5])
    assert srm.chi_square == pytest.approx(16.0)
    assert srm.degrees_of_freedom == 1
    assert srm.p_value == pytest.approx(6.334248e-05, rel=1e-6)


def test_sample_ratio_skips_zero_weights() -> None:
    srm = sample_ratio([500, 500, 0], [0.5, 0.5, 0.0])
    assert srm.degrees_of_freedom == 1
    assert srm.p_value == pytest.approx(1.0)


@pytest.mark.parametrize(("observed", "weights"), [([1], [0.5, 0.5]), ([1, 1], [0.0, 0.0])])
def test_sample_ratio_rejects_bad_input(observed: list[int], weights: list[float]) -> None:
    with pytest.raises(ValueError, match="weight"):
        sample_ratio(observed, weights)


def test_series_point_rates() -> None:
    point = SeriesPoint("20261123", 200, 10, 1000, 40)
    empty = SeriesPoint("20261124", 0, 0, 0, 0)
    assert (point.rate, point.cumulative_rate) == (0.05, 0.04)
    assert (empty.rate, empty.cumulative_rate) == (0.0, 0.0)
