"""Power and duration: how many visitors, and how many days, a minimum detectable effect needs.

For a conversion metric with baseline rate p and a relative minimum detectable effect (MDE), the
fixed-horizon sample size of the two-sided two-proportion z-test is the closed form R's
``power.prop.test`` solves (pooled variance under the null, unpooled under the alternative),
generalised to unequal traffic shares. The always-valid analysis needs more: its sample size is
where the confidence sequence's half-width leaves the effect `power` of the time, found with
scipy's root finder. Days follow from the slot's recent daily visitors. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.optimize import brentq
from scipy.stats import norm

from origin.experiments.stats.sequential import DEFAULT_TUNING, half_width

DEFAULT_POWER = 0.8


def _check(baseline: float, relative_mde: float, alpha: float, power: float) -> float:
    if not 0.0 < baseline < 1.0:
        raise ValueError(f"baseline rate must be in (0, 1), got {baseline}")
    treated = baseline * (1 + relative_mde)
    if relative_mde == 0 or not 0.0 < treated < 1.0:
        raise ValueError(
            "minimum detectable effect must be non-zero and keep the rate in (0, 1), got "
            f"{relative_mde}"
        )
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha}, {power}")
    return treated


def fixed_power(
    baseline: float,
    relative_mde: float,
    visitors: float,
    alpha: float = 0.05,
    control_share: float = 0.5,
) -> float:
    """Power of the fixed-horizon test with `visitors` in control and challenger together."""
    p1 = baseline
    p2 = _check(baseline, relative_mde, alpha, 0.5)
    n1, n2 = visitors * control_share, visitors * (1 - control_share)
    if n1 <= 0 or n2 <= 0:
        return 0.0
    pooled = (n1 * p1 + n2 * p2) / (n1 + n2)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se_alt = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    z = float(norm.ppf(1 - alpha / 2))
    return float(norm.cdf((abs(p2 - p1) - z * se_null) / se_alt))


def fixed_sample_size(
    baseline: float,
    relative_mde: float,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    control_share: float = 0.5,
) -> float:
    """Visitors (control and challenger together) for the fixed-horizon test."""
    p1 = baseline
    p2 = _check(baseline, relative_mde, alpha, power)
    s1, s2 = control_share, 1 - control_share
    pooled = s1 * p1 + s2 * p2
    z_a, z_b = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    root = z_a * math.sqrt(pooled * (1 - pooled) * (1 / s1 + 1 / s2)) + z_b * math.sqrt(
        p1 * (1 - p1) / s1 + p2 * (1 - p2) / s2
    )
    return (root / abs(p2 - p1)) ** 2


def sequential_power(
    baseline: float,
    relative_mde: float,
    visitors: float,
    alpha: float = 0.05,
    control_share: float = 0.5,
    tuning: float = DEFAULT_TUNING,
) -> float:
    """Chance that the confidence sequence excludes 0 at `visitors` (normal approximation)."""
    p1 = baseline
    p2 = _check(baseline, relative_mde, alpha, 0.5)
    n1, n2 = visitors * control_share, visitors * (1 - control_share)
    if n1 <= 0 or n2 <= 0:
        return 0.0
    variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    h = half_width(variance * visitors, visitors, alpha, tuning)
    return float(norm.cdf((abs(p2 - p1) - h) / math.sqrt(variance)))


def sequential_sample_size(
    baseline: float,
    relative_mde: float,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    control_share: float = 0.5,
    tuning: float = DEFAULT_TUNING,
) -> float:
    """Visitors (both variants) at which the always-valid analysis reaches `power`."""
    low = fixed_sample_size(baseline, relative_mde, alpha, power, control_share)
    high = low * 2
    while sequential_power(baseline, relative_mde, high, alpha, control_share, tuning) < power:
        high *= 2
    return float(
        brentq(
            lambda n: (
                sequential_power(baseline, relative_mde, n, alpha, control_share, tuning) - power
            ),
            low,
            high,
        )
    )


@dataclass(frozen=True, slots=True)
class DurationPlan:
    """What a chosen minimum detectable effect costs, for the create/edit form."""

    baseline: float
    relative_mde: float
    daily_visitors: float
    """Visitors per day entering the experiment (all variants)."""
    visitors_fixed: int
    """All variants together, fixed-horizon test at the planned end."""
    visitors_sequential: int
    """All variants together, always-valid analysis (what the results page uses)."""
    days_fixed: float
    days_sequential: float
    max_days: float
    reachable: bool
    message: str


def plan_duration(
    baseline: float,
    relative_mde: float,
    daily_visitors: float,
    weights: tuple[float, ...],
    *,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    max_days: float = 56.0,
    tuning: float = DEFAULT_TUNING,
) -> DurationPlan:
    """Sample size and days for the smallest challenger against control."""
    if len(weights) < 2 or min(weights) <= 0:
        raise ValueError("need control and at least one challenger with positive weights")
    control, smallest = weights[0], min(weights[1:])
    pair = control + smallest
    share = control / pair
    n_fixed = fixed_sample_size(baseline, relative_mde, alpha, power, share) / pair
    n_seq = sequential_sample_size(baseline, relative_mde, alpha, power, share, tuning) / pair
    per_day = max(daily_visitors, 0.0)
    days_fixed = n_fixed / per_day if per_day else math.inf
    days_seq = n_seq / per_day if per_day else math.inf
    reachable = days_seq <= max_days
    if per_day == 0:
        message = "no recent traffic on this slot: the duration cannot be estimated"
    elif reachable:
        message = (
            f"about {math.ceil(n_seq):,} visitors, {math.ceil(days_seq)} days at "
            f"{per_day:,.0f} visitors a day, to detect {relative_mde * 100:+.1f} % with "
            f"{power * 100:.0f} % power"
        )
    else:
        message = (
            f"cannot reach {relative_mde * 100:+.1f} % within {max_days:.0f} days: it needs about "
            f"{math.ceil(n_seq):,} visitors ({math.ceil(days_seq)} days at {per_day:,.0f} a "
            "day); choose a larger minimum detectable effect or more traffic"
        )
    return DurationPlan(
        baseline, relative_mde, per_day, math.ceil(n_fixed), math.ceil(n_seq), days_fixed,
        days_seq, max_days, reachable, message,
    )  # fmt: skip
