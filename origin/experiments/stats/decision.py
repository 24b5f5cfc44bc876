"""The decision a marketer can act on, with its reason in words.

Verdicts, in the order they are checked:

- ``blocked``: a data-quality check failed (sample-ratio mismatch, or too many visitors seen in
  more than one variant); nothing else may be read until it is explained;
- ``need_more_data``: the minimum-data gate (visitors per variant and, for a conversion primary
  metric, converters per variant) is not met yet;
- ``do_not_ship``: every challenger is significantly worse on the primary metric, or breaks a
  guardrail;
- ``ship``: a challenger is significantly better on the primary metric and passes every
  guardrail (the best such challenger is named);
- ``inconclusive``: no challenger differs from control yet.

"Significantly" means the always-valid p-value after the experiment's multiple-comparison
correction is at most alpha, so the verdict stays valid however often it is read. A guardrail
(metric, largest tolerated relative drop X) fails when the confidence sequence of the lift lies
entirely below -X, passes when it lies entirely above -X, and is pending otherwise. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from origin.experiments.stats.analysis import Comparison, MetricAnalysis

Verdict = Literal["blocked", "need_more_data", "do_not_ship", "ship", "inconclusive"]
MetricVerdict = Literal["better", "worse", "flat", "pass", "fail", "pending"]
MULTIPLE_EXPOSURE_LIMIT = 0.01
"""Share of visitors seen in more than one variant above which assignment is not trusted."""


@dataclass(frozen=True, slots=True)
class Gate:
    """The minimum-data gate."""

    minimum_visitors: int = 500
    """Exposed visitors per variant."""
    minimum_conversions: int = 20
    """Converters per variant, for a conversion primary metric."""


@dataclass(frozen=True, slots=True)
class GuardrailAnalysis:
    analysis: MetricAnalysis
    max_drop: float
    """Largest tolerated relative drop, e.g. 0.05 for "must not fall by more than 5 %"."""


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str
    variant: str | None = None
    """The challenger the verdict is about (ship: the one to ship)."""


def primary_verdict(c: Comparison, alpha: float) -> MetricVerdict:
    if c.adjusted_p_value > alpha:
        return "flat"
    return "better" if c.effect.difference > 0 else "worse"


def guardrail_verdict(c: Comparison, max_drop: float) -> MetricVerdict:
    rel = c.sequential.relative
    if rel is None:
        return "pending"
    if rel.high < -max_drop:
        return "fail"
    if rel.low > -max_drop:
        return "pass"
    return "pending"


def _pct(x: float) -> str:
    return f"{x * 100:+.1f} %"


def decide(
    primary: MetricAnalysis,
    guardrails: Sequence[GuardrailAnalysis],
    *,
    alpha: float,
    binary_primary: bool,
    gate: Gate,
    srm_mismatch: bool,
    multiple_exposure_share: float,
) -> Decision:
    if srm_mismatch:
        return Decision(
            "blocked",
            "the sample-ratio check failed: exposures do not fit the configured weights, so "
            "assignment or tracking is broken; fix it before reading any result",
        )
    if multiple_exposure_share > MULTIPLE_EXPOSURE_LIMIT:
        return Decision(
            "blocked",
            f"{multiple_exposure_share * 100:.1f} % of visitors were seen in more than one "
            f"variant (limit {MULTIPLE_EXPOSURE_LIMIT * 100:.0f} %): assignment is not sticky; "
            "fix it before reading any result",
        )
    short = min(primary.visitors)
    if short < gate.minimum_visitors:
        return Decision(
            "need_more_data",
            f"each variant needs at least {gate.minimum_visitors:,} exposed visitors before a "
            f"verdict; the smallest has {short:,.0f}",
        )
    if binary_primary:
        fewest = min(m * n for m, n in zip(primary.means, primary.visitors, strict=True))
        if fewest < gate.minimum_conversions:
            return Decision(
                "need_more_data",
                f"each variant needs at least {gate.minimum_conversions} converting visitors "
                f"on {primary.metric.replace('_', ' ')} before a verdict; the smallest has "
                f"{fewest:,.0f}",
            )
    broken: dict[str, str] = {}
    for g in guardrails:
        for c in g.analysis.comparisons:
            if guardrail_verdict(c, g.max_drop) == "fail" and c.variant not in broken:
                rel = c.sequential.relative
                assert rel is not None
                broken[c.variant] = (
                    f"{c.variant} lowers {g.analysis.metric.replace('_', ' ')} by more than the "
                    f"{g.max_drop * 100:.1f} % allowed (always-valid interval of the lift "
                    f"{_pct(rel.low)} … {_pct(rel.high)})"
                )
    verdicts = {c.variant: primary_verdict(c, alpha) for c in primary.comparisons}
    winners = [
        c
        for c in primary.comparisons
        if verdicts[c.variant] == "better" and c.variant not in broken
    ]
    metric = primary.metric.replace("_", " ")
    if winners:
        best = max(winners, key=lambda c: c.effect.relative or c.effect.difference)
        rel = best.sequential.relative
        lift = (
            ""
            if rel is None
            else f" by {_pct(best.effect.relative or 0.0)} "
            f"({_pct(rel.low)} … {_pct(rel.high)}, always valid)"
        )
        return Decision(
            "ship",
            f"{best.variant} beats control on {metric}{lift}, adjusted p = "
            f"{best.adjusted_p_value:.3g}, and passes every guardrail",
            best.variant,
        )
    if all(verdicts[c.variant] == "worse" or c.variant in broken for c in primary.comparisons):
        first = primary.comparisons[0].variant
        reason = broken.get(first) or (
            f"{first} is worse than control on {metric} (adjusted p = "
            f"{primary.comparisons[0].adjusted_p_value:.3g})"
        )
        others = len(primary.comparisons) - 1
        if others:
            reason += f"; the other {others} challenger(s) are worse or break a guardrail too"
        return Decision("do_not_ship", reason, first)
    if broken:
        variant, why = next(iter(broken.items()))
        return Decision(
            "inconclusive",
            f"no challenger is better on {metric} yet, and {why}",
            variant,
        )
    return Decision(
        "inconclusive",
        f"no challenger differs from control on {metric} yet (every always-valid interval still "
        "includes 0); keep it running, or stop and keep control if the planned duration is over",
    )
