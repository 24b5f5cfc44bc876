"""The analysis document from daily sums: revenue with CUPED, guardrails, checks, the lift's
sequence day by day, and JSON that a browser can read (no NaN or infinity)."""

from __future__ import annotations

import json
import time

import numpy as np

from fragments.experiments import Analysis, Experiment, Guardrail, Variant
from origin.events.moment_table import MomentTable
from origin.experiments.judgement import judge

IDS = ("control", "b", "c")


def _experiment(**analysis: object) -> Experiment:
    return Experiment(
        "hero", "Hero", "running", ("home-hero",),
        tuple(Variant(v, v, 1 / 3) for v in IDS),
        analysis=Analysis(**analysis),  # type: ignore[arg-type]
    )  # fmt: skip


def _table(
    days: int = 30,
    per_day: int = 300,
    revenue_lift: dict[str, float] | None = None,
    cart_rate: dict[str, float] | None = None,
    multi: float = 0.0,
) -> MomentTable:
    """Visitors with a covariate x that predicts revenue (rho^2 about 0.25)."""
    rng = np.random.default_rng(7)
    cells: dict[tuple[str, str, str], float] = {}
    for d in range(days):
        day = f"202611{d + 1:02d}" if d < 30 else f"202612{d - 29:02d}"
        for v in IDS:
            x = rng.poisson(3.0, per_day).astype(float)
            revenue = np.maximum(0.0, 200 * x + rng.normal(0, 600, per_day))
            revenue *= 1 + (revenue_lift or {}).get(v, 0.0)
            cart = (rng.random(per_day) < (cart_rate or {}).get(v, 0.2)).astype(float)
            sums = {
                "n": per_day, "x": x.sum(), "xx": (x * x).sum(),
                "y:revenue": revenue.sum(), "yy:revenue": (revenue**2).sum(),
                "xy:revenue": (x * revenue).sum(), "y:add_to_cart": cart.sum(),
                "xy:add_to_cart": (x * cart).sum(), "multi": round(multi * per_day),
            }  # fmt: skip
            for stat, value in sums.items():
                cells[(stat, v, day)] = float(value)
    return MomentTable(cells)


def test_revenue_with_cuped_a_passing_guardrail_and_the_lift_by_day() -> None:
    experiment = _experiment(
        primary_metric="revenue", guardrails=(Guardrail("add_to_cart", 0.1),), correction="bh"
    )
    started = time.perf_counter()
    doc = judge(experiment, _table(days=60, revenue_lift={"b": 0.08}))
    elapsed = time.perf_counter() - started
    json.dumps(doc, allow_nan=False)
    revenue, cart = doc["metrics"]
    assert (revenue["metric"], revenue["role"], cart["role"]) == ("revenue", "primary", "guardrail")
    assert 0.2 < revenue["variance_reduction"] < 0.3  # var(200 x) / var(revenue): about 0.25
    b, c = revenue["comparisons"]
    assert b["verdict"] == "better"
    assert c["verdict"] == "flat"
    assert {g["verdict"] for g in cart["comparisons"]} == {"pass"}
    assert doc["decision"]["verdict"] == "ship"
    assert doc["decision"]["variant"] == "b"
    assert doc["correction_name"].startswith("Benjamini-Hochberg")
    points = doc["lift_series"]["points"]["b"]
    assert len(points) == 60
    widths = [p["always_valid"]["high"] - p["always_valid"]["low"] for p in points]
    assert widths[-1] < widths[9] < widths[0]  # the sequence narrows
    assert all(p["always_valid"]["low"] <= p["fixed_horizon"]["low"] for p in points)
    assert elapsed < 5.0, f"judging 60 days of three variants took {elapsed:.2f} s"


def test_a_guardrail_breach_stops_a_winner() -> None:
    experiment = _experiment(primary_metric="revenue", guardrails=(Guardrail("add_to_cart", 0.05),))
    doc = judge(experiment, _table(revenue_lift={"b": 0.1}, cart_rate={"b": 0.15}))
    assert doc["decision"]["verdict"] == "inconclusive"  # c is not worse: not "do not ship" for all
    assert "b lowers add to cart by more than the 5.0 % allowed" in doc["decision"]["reason"]
    cart = doc["metrics"][1]
    assert cart["comparisons"][0]["verdict"] == "fail"


def test_visitors_in_two_variants_block_the_verdict() -> None:
    doc = judge(_experiment(primary_metric="revenue"), _table(revenue_lift={"b": 0.1}, multi=0.02))
    assert doc["checks"]["multiple_exposure"]["failed"] is True
    assert doc["decision"]["verdict"] == "blocked"


def test_a_broken_split_blocks_the_verdict() -> None:
    table = _table(revenue_lift={"b": 0.1})
    cells = dict(table.cells)
    cells[("untracked", "c", "20261101")] = 2000.0  # first exposures far above the weights
    doc = judge(_experiment(primary_metric="revenue"), MomentTable(cells))
    assert doc["checks"]["sample_ratio"]["failed"] is True
    assert doc["checks"]["untracked_visitors"] == 2000
    assert doc["decision"]["verdict"] == "blocked"


def test_no_data_is_valid_json_and_needs_more_data() -> None:
    doc = judge(_experiment(), MomentTable({}))
    json.dumps(doc, allow_nan=False)
    assert doc["decision"]["verdict"] == "need_more_data"
    assert doc["metrics"][0]["comparisons"][0]["always_valid"]["relative_interval"] is None
