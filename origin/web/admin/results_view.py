"""What the results pages show, formatted from a results document. Pure, no I/O.

`results_view` turns `origin.experiments.results.ResultsReader.results` output into rows of
display strings (rates with their 95 % interval, uplift against control with its interval and
p-value, a plain-words verdict), the sample-ratio-mismatch verdict and the chart; `quick` is the
one-line summary of the list page. It never recomputes statistics: `origin.experiments.stats`
did; it only words and rounds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from origin.web.admin.chart import ChartPoint, ChartSeries, conversion_chart


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


@dataclass(frozen=True, slots=True)
class QuickResult:
    """The list page's summary of one experiment's results."""

    exposures: int
    best: str
    """e.g. ``compact +12.4 %`` ("" without a comparable challenger)."""
    best_significant: bool
    srm_mismatch: bool


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
    return QuickResult(
        exposures=sum(int(v["exposures"]) for v in doc["variants"]),
        best=best,
        best_significant=best_significant,
        srm_mismatch=bool(doc["sample_ratio"]["mismatch"]),
    )
