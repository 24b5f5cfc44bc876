"""The create/edit form's power and duration estimate, in words. Pure, no I/O.

From what the marketer typed (minimum detectable effect, variant weights, primary metric) and
the slot's recent traffic and baseline (`origin.experiments.traffic.SlotTraffic`): the visitors
and days the always-valid analysis needs (`origin.experiments.stats.power.plan_duration`), the
fixed-horizon figure beside it, and a warning when the effect cannot be reached in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from origin.experiments.stats.power import plan_duration
from origin.experiments.traffic import SlotTraffic
from origin.web.admin.form import ExperimentFields

MAX_DAYS = 56.0
"""Eight weeks: longer tests drift (novelty, seasonality, cookie churn)."""


@dataclass(frozen=True, slots=True)
class PlanView:
    reachable: bool | None
    """None when there is nothing to estimate from."""
    message: str
    detail: str


def _number(text: str) -> float | None:
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def plan_view(fields: ExperimentFields, traffic: SlotTraffic) -> PlanView:
    mde = _number(fields.mde)
    weights = [_number(v.weight) for v in fields.variants]
    if mde is None or mde <= 0:
        return PlanView(None, "Enter a minimum detectable effect to estimate the duration.", "")
    if len(weights) < 2 or any(w is None or w <= 0 for w in weights):
        return PlanView(None, "Give every variant a positive share to estimate the duration.", "")
    if not fields.slots:
        return PlanView(None, "Choose a slot to estimate the duration from its traffic.", "")
    if traffic.baseline is None or traffic.daily_visitors <= 0:
        return PlanView(
            None,
            "No recent traffic on these slots yet: the duration cannot be estimated.",
            "The estimate uses the visitors and conversion rate of experiments that ran on "
            "the same slots in the last 7 days.",
        )
    try:
        plan = plan_duration(
            traffic.baseline, mde / 100, traffic.daily_visitors,
            tuple(w or 0.0 for w in weights), max_days=MAX_DAYS,
        )  # fmt: skip
    except ValueError as exc:
        return PlanView(None, f"Cannot estimate: {exc}.", "")
    metric = fields.primary_metric.replace("_", " ")
    if fields.primary_metric == "revenue":
        metric = "purchase conversion (standing in for revenue)"
    detail = (
        f"From {traffic.daily_visitors:,.0f} visitors a day and a {traffic.baseline * 100:.2f} % "
        f"baseline {metric} ({', '.join(traffic.sources)}). A single fixed-horizon look would "
        f"need {plan.visitors_fixed:,} visitors ({math.ceil(plan.days_fixed)} days); reading "
        "the results every day needs the always-valid figure."
    )
    return PlanView(plan.reachable, plan.message[:1].upper() + plan.message[1:] + ".", detail)
