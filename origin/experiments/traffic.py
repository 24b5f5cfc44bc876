"""A slot's recent traffic and baseline conversion rate, for planning an experiment. Pure.

Read from the sums of the experiments that ran on the slot (`origin.events.moment_table`):
visitors entering an experiment per day over the last `days` days with data (the busiest
experiment on the slot), and control's conversion rate on the metric over their whole run.
The create/edit form turns it into a sample size and a duration (`stats.power`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fragments.experiments import Experiment
from fragments.ids import CONTROL_VARIANT
from origin.events.moment_table import BINARY_METRICS, MomentTable

RECENT_DAYS = 7


@dataclass(frozen=True, slots=True)
class SlotTraffic:
    daily_visitors: float
    baseline: float | None
    """Control's conversion rate (None without converting data)."""
    sources: tuple[str, ...]
    """The experiments it was read from."""


def slot_traffic(
    runs: Sequence[tuple[Experiment, MomentTable]],
    slots: Sequence[str],
    metric: str,
    now: float,
    days: int = RECENT_DAYS,
) -> SlotTraffic:
    first = (datetime.fromtimestamp(now, UTC) - timedelta(days=days)).strftime("%Y%m%d")
    rate_metric = metric if metric in BINARY_METRICS else "purchase"
    daily = 0.0
    converted = exposed = 0.0
    sources = []
    for experiment, table in runs:
        if not set(experiment.slots) & set(slots):
            continue
        recent = [d for d in table.days if d > first]
        if recent:
            entered = sum(
                v for (stat, _, day), v in table.cells.items() if stat == "n" and day > first
            )
            daily = max(daily, entered / len(recent))
            sources.append(experiment.key)
        control = table.moments(rate_metric, CONTROL_VARIANT)
        converted += control.sum_y
        exposed += control.n
    baseline = converted / exposed if exposed and 0 < converted < exposed else None
    return SlotTraffic(daily, baseline, tuple(sources))
