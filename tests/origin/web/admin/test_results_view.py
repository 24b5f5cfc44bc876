"""Results in words and numbers, and the server-rendered chart (pure)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from origin.web.admin.chart import ChartPoint, ChartSeries, conversion_chart
from origin.web.admin.results_view import p_value_text, quick, results_view
from origin.web.admin.svg_plot import bucket_label, nice_ceiling


def variant(
    vid: str,
    exposures: int,
    conversions: int,
    *,
    uplift: float | None = None,
    difference: float = 0.0,
    p: float = 1.0,
    significant: bool = False,
) -> dict[str, Any]:
    vs = None
    if vid != "control":
        vs = {
            "difference": difference,
            "difference_interval": {"low": difference - 0.01, "high": difference + 0.01},
            "uplift": uplift,
            "uplift_interval": None if uplift is None else {"low": -0.05, "high": 0.4},
            "p_value": p,
            "significant": significant,
        }
    return {
        "id": vid,
        "name": vid.title(),
        "weight": 0.5,
        "exposures": exposures,
        "conversions": conversions,
        "rate": conversions / exposures if exposures else 0.0,
        "interval": {"low": 0.01, "high": 0.2},
        "vs_control": vs,
        "value_cents": 123456,
    }


def document(variants: list[dict[str, Any]], mismatch: bool = False) -> dict[str, Any]:
    return {
        "metric": "purchase",
        "confidence": 0.95,
        "warnings": ["SAMPLE RATIO MISMATCH: ..."] if mismatch else [],
        "variants": variants,
        "sample_ratio": {
            "chi_square": 21.4,
            "degrees_of_freedom": 1,
            "p_value": 0.0000037 if mismatch else 0.41,
            "expected": {v["id"]: 100.0 for v in variants},
            "mismatch": mismatch,
        },
        "series": {
            "granularity": "day",
            "points": {
                v["id"]: [
                    {
                        "bucket": "20261116",
                        "cumulative_rate": 0.05,
                        "cumulative_exposures": 40,
                        "cumulative_conversions": 2,
                    },
                    {
                        "bucket": "20261117",
                        "cumulative_rate": 0.08,
                        "cumulative_exposures": 100,
                        "cumulative_conversions": 8,
                    },
                ]
                for v in variants
            },
        },
        "computed_at": 1_800_000_000.0,
    }


def test_rows_word_the_comparison_with_control() -> None:
    view = results_view(
        document(
            [
                variant("control", 100, 10),
                variant("better", 100, 20, uplift=1.0, difference=0.1, p=0.03, significant=True),
                variant("same", 100, 11, uplift=0.1, difference=0.01, p=0.8),
                variant("worse", 100, 2, uplift=-0.8, difference=-0.08, p=0.01, significant=True),
                variant("empty", 0, 0),
            ]
        )
    )

    verdicts = {r.id: r.verdict for r in view.rows}
    assert verdicts == {
        "control": "control",
        "better": "better",
        "same": "no difference yet",
        "worse": "worse",
        "empty": "no data",
    }
    better = view.rows[1]
    assert (better.rate, better.uplift, better.difference, better.p_value) == (
        "20.00 %", "+100.0 %", "+10.00 pp", "0.030",
    )  # fmt: skip
    assert better.interval == "1.00 % … 20.00 %"
    assert better.uplift_interval == "-5.0 % … +40.0 %"
    assert view.rows[0].uplift == ""
    assert view.rows[4].uplift == "-"
    assert view.rows[0].value == "1,234.56"
    assert view.total_exposures == 400
    assert not view.srm_mismatch
    assert view.srm_summary == "chi-square 21.40 with 1 degree(s) of freedom, p = 0.410"


def test_a_sample_ratio_mismatch_is_flagged() -> None:
    view = results_view(document([variant("control", 300, 10), variant("b", 100, 5)], True))

    assert view.srm_mismatch
    assert view.srm_summary.endswith("freedom, p < 0.001")
    assert view.warnings == ("SAMPLE RATIO MISMATCH: ...",)


def test_quick_results_pick_the_best_uplift() -> None:
    doc = document(
        [
            variant("control", 100, 10),
            variant("a", 100, 12, uplift=0.2, p=0.4),
            variant("b", 100, 20, uplift=1.0, p=0.01, significant=True),
            variant("c", 100, 0, uplift=None),
        ],
        mismatch=True,
    )

    summary = quick(doc)

    assert (summary.exposures, summary.best, summary.best_significant, summary.srm_mismatch) == (
        400, "b +100.0 %", True, True,
    )  # fmt: skip
    assert quick(document([variant("control", 0, 0), variant("b", 0, 0)])).best == ""


def test_quick_results_prefer_the_always_valid_decision() -> None:
    doc = document(
        [variant("control", 100, 10), variant("b", 100, 20, uplift=1.0, p=0.01, significant=True)]
    )
    doc["analysis"] = {"decision": {"verdict": "ship", "reason": "...", "variant": "b"}}
    summary = quick(doc)
    assert (summary.decision, summary.decision_kind) == ("Ship b", "ship")
    assert summary.best_significant is False  # the fixed-horizon badge gives way to the decision
    doc["analysis"] = {"decision": {"verdict": "need_more_data", "reason": "...", "variant": None}}
    assert quick(doc).decision == "Need more data"


@pytest.mark.parametrize(
    ("p", "text"), [(0.5, "0.500"), (0.001, "0.001"), (0.000999, "< 0.001"), (0.0, "< 0.001")]
)
def test_p_values(p: float, text: str) -> None:
    assert p_value_text(p) == text


@pytest.mark.parametrize(
    ("bucket", "label"),
    [("20261117", "Nov 17"), ("2026111714", "Nov 17 14h"), ("20261317", "20261317"), ("x", "x")],
)
def test_bucket_labels(bucket: str, label: str) -> None:
    assert bucket_label(bucket) == label


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0.0, 0.01), (0.011, 0.02), (0.021, 0.025), (0.03, 0.05), (0.07, 0.1), (0.5, 0.5), (1, 1)],
)
def test_the_axis_ends_at_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_the_chart_draws_one_line_per_variant_and_escapes_text() -> None:
    points = (
        ChartPoint("20261116", 0.05, 40, 2),
        ChartPoint("20261117", 0.08, 100, 8),
        ChartPoint("20261118", 0.07, 150, 10),
    )
    svg = conversion_chart(
        [ChartSeries("control", points), ChartSeries("<script>", points[:2])], "add_to_cart"
    )

    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert len(re.findall(r"<polyline", svg)) == 2
    assert len(re.findall(r"<circle", svg)) == 5
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'aria-label="Cumulative add to cart conversion rate per variant"' in svg
    assert "8.00 % (8 of 100 visitors)" in svg
    assert ">10 %</text>" in svg  # the axis ends at a round 10 %
    assert ">0 %</text>" in svg
    assert "style=" not in svg  # the admin's CSP forbids inline styles


def test_no_data_means_no_chart() -> None:
    assert conversion_chart([ChartSeries("control", ())], "purchase") == ""
    single = conversion_chart([ChartSeries("control", (ChartPoint("20261117", 0, 3, 0),))], "x")
    assert "<polyline" not in single
    assert "<circle" in single
