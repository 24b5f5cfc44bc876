"""What the results pages show, formatted from a results document. Pure, no I/O.

`results_view` turns `origin.experiments.results.ResultsReader.results` output into display
strings: the decision and its reason, the data-quality checks, each metric's always-valid lift
per challenger (with the fixed-horizon interval beside it, labelled), the lift chart, and the
fixed-horizon rows per variant (rates with their 95 % interval, uplift, p-value), the
sample-ratio-mismatch verdict and the conversion chart; `quick` is the
one-line summary of the list page. It never recomputes statistics: `origin.experiments.stats`
did; it only words and rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from origin.web.admin.chart import ChartPoint, ChartSeries, conversion_chart
from origin.web.admin.lift_chart import LiftPoint, LiftSeries, lift_chart

VERDICT_LABELS = {
    "ship": "Ship",
    "do_not_ship": "Do not ship",
    "inconclusive": "Inconclusive",
    "need_more_data": "Need more data",
    "blocked": "Blocked: data problem",
}
METRIC_LABELS = {
    "purchase": "Purchase conversion",
    "add_to_cart": "Add-to-cart rate",
    "click": "Click rate",
    "revenue": "Revenue per visitor",
}


@dataclass(frozen=True, slots=True)
class LiftRow:
    """One challenger on one metric, always valid first."""

    variant: str
    control: str
    """Control's value (rate or revenue per visitor)."""
    challenger: str
    lift: str
    always_valid: str
    """The confidence sequence of the relative lift."""
    fixed_horizon: str
    """The fixed-horizon interval (one planned look only)."""
    adjusted_p: str
    verdict: str


@dataclass(frozen=True, slots=True)
class MetricView:
    metric: str
    label: str
    role: str
    """``primary`` or ``guardrail: must not fall by more than X %``."""
    cuped: str
    """The variance reduction CUPED achieved, in words."""
    rows: tuple[LiftRow, ...]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class DecisionView:
    verdict: str
    """Machine form: ship, do_not_ship, inconclusive, need_more_data, blocked."""
    label: str
    reason: str
    method: str
    correction: str
    checks: tuple[Check, ...]
    metrics: tuple[MetricView, ...]
    lift_svg: str
    lift_metric: str


@dataclass(frozen=True, slots=True)
class VariantRow:
    id: str
    name: str
    weight: str
    """Configured traffic share, e.g. ``50 %``."""
    exposures: int
    expected: str
    """Exposures the configured weights predict (the SRM test's expectation)."""
    conversions: int
    rate: str
    interval: str
    """95 % Wilson interval of the rate."""
    uplift: str
    """Relative uplift against control ("" for control)."""
    uplift_interval: str
    difference: str
    """Absolute difference in percentage points."""
    p_value: str
    verdict: str
    """control, better, worse, no difference yet, or no data."""
    value: str
    """Purchase value in currency units."""


@dataclass(frozen=True, slots=True)
class ResultsView:
    metric: str
    granularity: str
    confidence: str
    rows: tuple[VariantRow, ...]
    total_exposures: int
    srm_mismatch: bool
    srm_summary: str
    warnings: tuple[str, ...]
    chart_svg: str
    series: tuple[ChartSeries, ...]
    computed_at: str
    decision: DecisionView | None = None


@dataclass(frozen=True, slots=True)
class QuickResult:
    """The list page's summary of one experiment's results."""

    exposures: int
    best: str
    """e.g. ``compact +12.4 %`` ("" without a comparable challenger)."""
    best_significant: bool
    """The fixed-horizon test's: only shown when there is no always-valid decision."""
    srm_mismatch: bool
    decision: str = ""
    """The always-valid decision's label (Ship, Need more data...); "" without one."""
    decision_kind: str = ""
    """Its machine form (ship, do_not_ship, inconclusive, need_more_data, blocked)."""


def percent(value: float, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f} %"


def signed_percent(value: float, digits: int = 1) -> str:
    return f"{value * 100:+.{digits}f} %"


def p_value_text(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: float) -> str:
    """``p < 0.001`` or ``p = 0.123``, for sentences."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _interval(i: Mapping[str, float] | None, signed: bool = False) -> str:
    if i is None:
        return "-"
    fmt = signed_percent if signed else percent
    return f"{fmt(i['low'])} … {fmt(i['high'])}"


def _row(v: Mapping[str, Any], expected: float) -> VariantRow:
    vs = v.get("vs_control")
    exposures = int(v["exposures"])
    if vs is None:
        uplift = uplift_interval = difference = p_value = ""
        verdict = "control"
    else:
        uplift = "-" if vs["uplift"] is None else signed_percent(vs["uplift"])
        uplift_interval = _interval(vs["uplift_interval"], signed=True)
        difference = f"{vs['difference'] * 100:+.2f} pp"
        p_value = p_value_text(vs["p_value"])
        if not exposures:
            verdict = "no data"
        elif not vs["significant"]:
            verdict = "no difference yet"
        else:
            verdict = "better" if vs["difference"] > 0 else "worse"
    return VariantRow(
        id=str(v["id"]),
        name=str(v["name"]),
        weight=percent(float(v["weight"]), 0),
        exposures=exposures,
        expected=f"{expected:.0f}",
        conversions=int(v["conversions"]),
        rate=percent(float(v["rate"])),
        interval=_interval(v["interval"]),
        uplift=uplift,
        uplift_interval=uplift_interval,
        difference=difference,
        p_value=p_value,
        verdict=verdict,
        value=f"{int(v.get('value_cents', 0)) / 100:,.2f}",
    )


def _value(metric: str, mean: float) -> str:
    return f"{mean / 100:,.2f}" if metric == "revenue" else percent(mean)


def _relative(i: Mapping[str, float] | None) -> str:
    return "-" if i is None else f"{signed_percent(i['low'])} … {signed_percent(i['high'])}"


def _metric_view(m: Mapping[str, Any]) -> MetricView:
    means = {v["id"]: float(v["mean"]) for v in m["variants"]}
    control = str(m["variants"][0]["id"])
    rows = []
    for c in m["comparisons"]:
        av, fh = c["always_valid"], c["fixed_horizon"]
        rows.append(
            LiftRow(
                variant=str(c["variant"]),
                control=_value(m["metric"], means[control]),
                challenger=_value(m["metric"], means[c["variant"]]),
                lift="-" if c["relative"] is None else signed_percent(c["relative"]),
                always_valid=_relative(av["relative_interval"]),
                fixed_horizon=_relative(fh["relative_interval"]),
                adjusted_p=p_value_text(float(av["adjusted_p_value"])),
                verdict=str(c["verdict"]),
            )
        )
    role = "primary"
    if m["role"] == "guardrail":
        role = f"guardrail: must not fall by more than {float(m['max_drop']) * 100:.1f} %"
    reduction = float(m["variance_reduction"])
    cuped = (
        f"CUPED reduced the variance by {reduction * 100:.0f} %"
        if reduction > 0.005
        else "CUPED: no variance reduction (no pre-exposure activity to learn from)"
    )
    return MetricView(
        str(m["metric"]), METRIC_LABELS.get(m["metric"], m["metric"]), role, cuped, tuple(rows)
    )


def decision_view(analysis: Mapping[str, Any], colours: Mapping[str, int]) -> DecisionView:
    """The decision, checks, metrics and lift chart of a results document's ``analysis``."""
    checks = analysis["checks"]
    srm = checks["sample_ratio"]
    multi = checks["multiple_exposure"]
    gate = checks["minimum_data"]
    listed = [
        Check(
            "Traffic split",
            not srm["failed"],
            f"sample-ratio test {p_phrase(float(srm['p_value']))} "
            f"(fails below {float(srm['threshold']):g})",
        ),
        Check(
            "Sticky assignment",
            not multi["failed"],
            f"{multi['visitors']} visitor(s) seen in more than one variant "
            f"({float(multi['share']) * 100:.2f} %, limit {float(multi['limit']) * 100:.0f} %)",
        ),
        Check(
            "Minimum data",
            bool(gate["met"]),
            f"{int(gate['minimum_visitors']):,} visitors per variant required; the smallest "
            f"has {float(gate['smallest_variant']):,.0f}",
        ),
    ]
    if checks["untracked_visitors"]:
        listed.append(
            Check(
                "Visitor cap",
                False,
                f"{checks['untracked_visitors']:,} visitors beyond the tracking cap are left out",
            )
        )
    decision = analysis["decision"]
    series = analysis["lift_series"]
    lifts = tuple(
        LiftSeries(
            variant,
            colours.get(variant, 1),
            tuple(
                LiftPoint(str(p["day"]), float(p["relative"]), p["always_valid"]["low"],
                          p["always_valid"]["high"])
                for p in points
                if p["relative"] is not None and p["always_valid"] is not None
            ),
        )
        for variant, points in series["points"].items()
    )  # fmt: skip
    return DecisionView(
        verdict=str(decision["verdict"]),
        label=VERDICT_LABELS.get(decision["verdict"], str(decision["verdict"])),
        reason=str(decision["reason"]),
        method=str(analysis["method"]),
        correction=str(analysis["correction_name"]),
        checks=tuple(listed),
        metrics=tuple(_metric_view(m) for m in analysis["metrics"]),
        lift_svg=lift_chart(lifts, str(series["metric"])),
        lift_metric=METRIC_LABELS.get(series["metric"], str(series["metric"])),
    )


def results_view(doc: Mapping[str, Any]) -> ResultsView:
    srm = doc["sample_ratio"]
    expected: Mapping[str, float] = srm["expected"]
    rows = tuple(_row(v, float(expected.get(v["id"], 0.0))) for v in doc["variants"])
    points: Mapping[str, list[Mapping[str, Any]]] = doc["series"]["points"]
    series = tuple(
        ChartSeries(
            v["id"],
            tuple(
                ChartPoint(
                    str(p["bucket"]),
                    float(p["cumulative_rate"]),
                    int(p["cumulative_exposures"]),
                    int(p["cumulative_conversions"]),
                )
                for p in points.get(v["id"], [])
            ),
        )
        for v in doc["variants"]
    )
    total = sum(r.exposures for r in rows)
    if total == 0:
        srm_summary = "no exposures yet"
    else:
        srm_summary = (
            f"chi-square {srm['chi_square']:.2f} with {srm['degrees_of_freedom']} degree(s) of "
            f"freedom, {p_phrase(float(srm['p_value']))}"
        )
    return ResultsView(
        metric=str(doc["metric"]),
        granularity=str(doc["series"]["granularity"]),
        confidence=percent(float(doc["confidence"]), 0),
        rows=rows,
        total_exposures=total,
        srm_mismatch=bool(srm["mismatch"]),
        srm_summary=srm_summary,
        warnings=tuple(str(w) for w in doc["warnings"]),
        chart_svg=conversion_chart(series, str(doc["metric"])),
        series=series,
        computed_at=datetime.fromtimestamp(float(doc["computed_at"]), UTC).strftime(
            "%Y-%m-%d %H:%M:%S UTC"
        ),
        decision=None
        if "analysis" not in doc
        else decision_view(doc["analysis"], {v["id"]: i for i, v in enumerate(doc["variants"])}),
    )


def quick(doc: Mapping[str, Any]) -> QuickResult:
    best, best_significant, best_uplift = "", False, float("-inf")
    for v in doc["variants"]:
        vs = v.get("vs_control")
        if vs is None or vs["uplift"] is None or vs["uplift"] <= best_uplift:
            continue
        best_uplift = vs["uplift"]
        best = f"{v['id']} {signed_percent(vs['uplift'])}"
        best_significant = bool(vs["significant"])
    decision = doc.get("analysis", {}).get("decision")
    kind = "" if decision is None else str(decision["verdict"])
    label = VERDICT_LABELS.get(kind, kind)
    if decision is not None and decision.get("variant") and kind in ("ship", "do_not_ship"):
        label = f"{label} {decision['variant']}"
    return QuickResult(
        exposures=sum(int(v["exposures"]) for v in doc["variants"]),
        best=best,
        best_significant=best_significant and decision is None,
        srm_mismatch=bool(doc["sample_ratio"]["mismatch"]),
        decision=label,
        decision_kind=kind,
    )
