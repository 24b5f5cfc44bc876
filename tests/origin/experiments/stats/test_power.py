"""Sample size and power against R's ``power.prop.test`` (stats package).

``power.prop.test(p1 = .10, p2 = .12, power = .80)`` gives n = 3840.847 per group, and the
documentation's example ``power.prop.test(n = 50, p1 = .50, p2 = .75)`` gives power = 0.7401659.
"""

from __future__ import annotations

import math

import pytest

from origin.experiments.stats.power import (
    fixed_power,
    fixed_sample_size,
    plan_duration,
    sequential_power,
    sequential_sample_size,
)


def test_sample_size_matches_r() -> None:
    assert fixed_sample_size(0.10, 0.20) / 2 == pytest.approx(3840.847, abs=1e-3)


def test_power_matches_r() -> None:
    assert fixed_power(0.50, 0.50, 100) == pytest.approx(0.7401659, abs=1e-7)


def test_size_and_power_are_inverse() -> None:
    n = fixed_sample_size(0.03, 0.1, power=0.9, control_share=0.4)
    assert fixed_power(0.03, 0.1, n, control_share=0.4) == pytest.approx(0.9, abs=1e-6)
    s = sequential_sample_size(0.03, 0.1)
    assert sequential_power(0.03, 0.1, s) == pytest.approx(0.8, abs=1e-6)
    assert s > fixed_sample_size(0.03, 0.1)  # always-valid inference costs visitors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline": 0.0, "relative_mde": 0.1}, "baseline"),
        ({"baseline": 0.5, "relative_mde": 1.5}, "minimum detectable effect"),
        ({"baseline": 0.5, "relative_mde": 0.0}, "minimum detectable effect"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fixed_sample_size(**kwargs)


def test_plan_warns_when_the_effect_is_out_of_reach() -> None:
    ok = plan_duration(0.05, 0.2, 2000, (0.5, 0.5))
    assert ok.reachable
    assert "days" in ok.message
    assert ok.days_sequential == pytest.approx(ok.visitors_sequential / 2000, rel=1e-3)
    far = plan_duration(0.05, 0.01, 200, (0.5, 0.5))
    assert not far.reachable
    assert "cannot reach" in far.message
    none = plan_duration(0.05, 0.2, 0, (0.5, 0.5))
    assert not none.reachable
    assert math.isinf(none.days_fixed)


def test_uneven_weights_plan_for_the_smallest_challenger() -> None:
    even = plan_duration(0.05, 0.2, 1000, (0.5, 0.5))
    three = plan_duration(0.05, 0.2, 1000, (0.5, 0.25, 0.25))
    assert three.visitors_fixed > even.visitors_fixed
