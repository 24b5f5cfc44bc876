"""The always-valid analysis of an experiment as a JSON document: metrics, checks and decision.

From the per-variant, per-day sums (`origin.events.moment_table.MomentTable`) and the experiment's
analysis settings: every metric (the primary and each guardrail) with every challenger against
control (`origin.experiments.stats.analysis`), the multiple-comparison correction across all of
them, the data-quality checks (sample ratio on exact first exposures, visitors seen in more than
one variant, the minimum-data gate), the decision in words (`stats.decision`), and the primary
lift's confidence sequence day by day for the chart. Pure: no I/O, never changes an experiment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fragments.experiments import Experiment
from origin.events.moment_table import BINARY_METRICS, MomentTable
from origin.experiments.stats.analysis import (
    Comparison,
    MetricAnalysis,
    adjust_family,
    analyse_metric,
)
from origin.experiments.stats.corrections import CORRECTION_NAMES
from origin.experiments.stats.decision import (
    MULTIPLE_EXPOSURE_LIMIT,
    Gate,
    GuardrailAnalysis,
    decide,
    guardrail_verdict,
    primary_verdict,
)
from origin.experiments.stats.proportions import Interval
from origin.experiments.stats.sequential import DEFAULT_TUNING
from origin.experiments.stats.srm import SRM_ALPHA, sample_ratio

METHOD = (
    "asymptotic confidence sequences (Waudby-Smith, Arnold, Wu, Howard and Ramdas, "
    "'Time-uniform central limit theory and asymptotic confidence sequences', 2024)"
)
MINIMUM_CONVERSIONS = 20


def _interval(i: Interval | None) -> dict[str, float] | None:
    """JSON of an interval; None when there is none yet (no data, or no variation)."""
    if i is None or not (math.isfinite(i.low) and math.isfinite(i.high)) or i.low == i.high:
        return None
    return {"low": i.low, "high": i.high}


def _comparison(c: Comparison, alpha: float, role: str, max_drop: float | None) -> dict[str, Any]:
    verdict = primary_verdict(c, alpha) if max_drop is None else guardrail_verdict(c, max_drop)
    return {
        "variant": c.variant,
        "difference": c.effect.difference,
        "relative": c.effect.relative,
        "verdict": verdict,
        "variance_reduction": c.effect.variance_reduction,
        "always_valid": {
            "difference_interval": _interval(c.sequential.difference),
            "relative_interval": _interval(c.sequential.relative),
            "p_value": c.sequential.p_value,
            "adjusted_p_value": c.adjusted_p_value,
        },
        "fixed_horizon": {
            "difference_interval": _interval(c.fixed_horizon.difference),
            "relative_interval": _interval(c.fixed_horizon.relative),
            "p_value": c.fixed_horizon.p_value,
        },
        "role": role,
    }


def _metric(
    a: MetricAnalysis, ids: list[str], alpha: float, role: str, max_drop: float | None
) -> dict[str, Any]:
    return {
        "metric": a.metric,
        "kind": "binary" if a.metric in BINARY_METRICS else "continuous",
        "role": role,
        "max_drop": max_drop,
        "theta": a.theta,
        "variance_reduction": a.variance_reduction,
        "variants": [
            {"id": v, "visitors": n, "mean": m}
            for v, n, m in zip(ids, a.visitors, a.means, strict=True)
        ],
        "comparisons": [_comparison(c, alpha, role, max_drop) for c in a.comparisons],
    }


def judge(experiment: Experiment, table: MomentTable, *, alpha: float = 0.05) -> dict[str, Any]:
    """The ``analysis`` part of the results document."""
    settings = experiment.analysis
    ids = list(experiment.variant_ids())
    cuped = settings.cuped

    def analyse(metric: str, upto: str | None = None) -> MetricAnalysis:
        return analyse_metric(
            metric, ids, table.all_moments(metric, ids, upto), alpha=alpha, cuped=cuped
        )

    family = [analyse(settings.primary_metric)] + [analyse(g.metric) for g in settings.guardrails]
    family = adjust_family(family, settings.correction)  # type: ignore[arg-type]
    primary, guards = family[0], family[1:]
    first_exposures = [int(table.total("n", v) + table.total("untracked", v)) for v in ids]
    srm = sample_ratio(first_exposures, [v.weight for v in experiment.variants])
    multi = sum(table.total("multi", v) for v in ids)
    exposed = sum(table.total("n", v) for v in ids)
    share = multi / exposed if exposed else 0.0
    gate = Gate(settings.minimum_visitors, MINIMUM_CONVERSIONS)
    decision = decide(
        primary,
        [
            GuardrailAnalysis(a, g.max_drop)
            for a, g in zip(guards, settings.guardrails, strict=True)
        ],
        alpha=alpha,
        binary_primary=settings.primary_metric in BINARY_METRICS,
        gate=gate,
        srm_mismatch=srm.mismatch,
        multiple_exposure_share=share,
    )
    metrics = [_metric(primary, ids, alpha, "primary", None)] + [
        _metric(a, ids, alpha, "guardrail", g.max_drop)
        for a, g in zip(guards, settings.guardrails, strict=True)
    ]
    return {
        "method": METHOD,
        "alpha": alpha,
        "tuning": DEFAULT_TUNING,
        "correction": settings.correction,
        "correction_name": CORRECTION_NAMES.get(settings.correction, settings.correction),
        "cuped": cuped,
        "primary_metric": settings.primary_metric,
        "decision": {
            "verdict": decision.verdict,
            "reason": decision.reason,
            "variant": decision.variant,
        },
        "checks": {
            "sample_ratio": {
                "first_exposures": dict(zip(ids, first_exposures, strict=True)),
                "expected": dict(zip(ids, srm.expected, strict=True)),
                "chi_square": srm.chi_square,
                "p_value": srm.p_value,
                "threshold": SRM_ALPHA,
                "failed": srm.mismatch,
            },
            "multiple_exposure": {
                "visitors": int(multi),
                "share": share,
                "limit": MULTIPLE_EXPOSURE_LIMIT,
                "failed": share > MULTIPLE_EXPOSURE_LIMIT,
            },
            "minimum_data": {
                "minimum_visitors": settings.minimum_visitors,
                "smallest_variant": min(primary.visitors),
                "met": decision.verdict != "need_more_data",
            },
            "untracked_visitors": int(sum(table.total("untracked", v) for v in ids)),
        },
        "metrics": metrics,
        "lift_series": _lift_series(table, ids, analyse, settings.primary_metric),
    }


def _lift_series(table: MomentTable, ids: list[str], analyse: Any, metric: str) -> dict[str, Any]:
    points: dict[str, list[dict[str, Any]]] = {v: [] for v in ids[1:]}
    for day in table.days:
        a: MetricAnalysis = analyse(metric, day)
        for c in a.comparisons:
            points[c.variant].append(
                {
                    "day": day,
                    "visitors": c.effect.n,
                    "relative": c.effect.relative,
                    "always_valid": _interval(c.sequential.relative),
                    "fixed_horizon": _interval(c.fixed_horizon.relative),
                }
            )
    return {"metric": metric, "points": points}


def summary(analysis: Mapping[str, Any]) -> str:
    """One line: the verdict and its reason."""
    d = analysis["decision"]
    return f"{str(d['verdict']).replace('_', ' ')}: {d['reason']}"
