"""An experiment's results: the aggregates read from Redis, run through `stats`, as JSON.

Per variant: distinct exposed visitors, distinct converted visitors (the chosen metric:
purchase by default, or add_to_cart / click), the conversion rate with its Wilson interval, the
comparison with control (difference, relative uplift, both with intervals, p-value), raw event
counts and purchase value. Across variants: the sample-ratio-mismatch test against the
configured weights; a mismatch (p < 0.001) is logged as a warning and listed in ``warnings``
first, because it invalidates everything else. Plus the conversion-over-time series for a chart.
Those per-variant numbers are fixed-horizon: valid for one look at a planned sample size.

``analysis`` (`origin.experiments.judgement`) is what to decide with: the always-valid analysis
of the primary and guardrail metrics, the checks, the decision in words, and the primary lift's
confidence sequence over time. Reads only; never changes an experiment.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fragments.ids import CONTROL_VARIANT
from origin.core.redis_client import RedisLike
from origin.events.counters import EventCounters
from origin.events.schema import CONVERSION_TYPES, EVENT_TYPES
from origin.experiments.errors import ExperimentNotFound
from origin.experiments.judgement import judge
from origin.experiments.stats import (
    DEFAULT_CONFIDENCE,
    Interval,
    SeriesPoint,
    compare,
    sample_ratio,
    wilson,
)
from origin.experiments.store import ExperimentStore
from origin.experiments.traffic import SlotTraffic, slot_traffic

log = logging.getLogger("shelfedge.results")


class ResultsReader:
    """Computes results documents."""

    def __init__(
        self, redis: RedisLike, experiments: ExperimentStore, timeout: float = 2.0
    ) -> None:
        self.counters = EventCounters(redis, timeout)
        self.experiments = experiments

    async def slot_traffic(
        self, slots: list[str], metric: str, exclude: str | None = None
    ) -> SlotTraffic:
        """Recent traffic and baseline of the slots, from the experiments that ran on them."""
        runs = [
            (e, await self.counters.moments(e.key))
            for e in (await self.experiments.all()).values()
            if e.key != exclude and set(e.slots) & set(slots)
        ]
        return slot_traffic(runs, slots, metric, time.time())

    async def results(
        self,
        key: str,
        metric: str = "purchase",
        by_day: bool = True,
        confidence: float = DEFAULT_CONFIDENCE,
    ) -> dict[str, Any]:
        if metric not in CONVERSION_TYPES:
            raise ValueError(f"metric must be one of {', '.join(CONVERSION_TYPES)}")
        experiment = await self.experiments.get(key)
        if experiment is None:
            raise ExperimentNotFound(key)
        ids = list(experiment.variant_ids())
        totals = await self.counters.totals(key, ids, EVENT_TYPES)
        series = await self.counters.series(key, ids, metric, by_day)
        analysis = judge(experiment, await self.counters.moments(key), alpha=1 - confidence)
        exposures = [totals[v].visitors["exposure"] for v in ids]
        # Converters are counted among exposed visitors: a count above exposures can only be
        # HyperLogLog noise (or conversions sent without an exposure) and would break a rate.
        conversions = [min(totals[v].visitors[metric], totals[v].visitors["exposure"]) for v in ids]
        control = (conversions[0], exposures[0])
        srm = sample_ratio(exposures, [v.weight for v in experiment.variants])
        warnings: list[str] = []
        if srm.mismatch:
            warnings.append(
                f"SAMPLE RATIO MISMATCH: exposures {dict(zip(ids, exposures, strict=True))} do "
                f"not fit the configured weights (chi-square {srm.chi_square:.1f}, p = "
                f"{srm.p_value:.2g} < 0.001). Do not trust these results until assignment and "
                "exposure tracking are checked."
            )
            log.warning("experiment %s: %s", key, warnings[-1])
        multiple = analysis["checks"]["multiple_exposure"]
        if multiple["failed"]:
            warnings.append(
                f"MULTIPLE EXPOSURE: {multiple['visitors']} visitors ("
                f"{multiple['share'] * 100:.1f} %) were seen in more than one variant. Assignment "
                "is not sticky; no verdict until it is fixed."
            )
            log.warning("experiment %s: %s", key, warnings[-1])
        variants = []
        for i, v in enumerate(experiment.variants):
            t = totals[v.id]
            rate = conversions[i] / exposures[i] if exposures[i] else 0.0
            vs = None
            if v.id != CONTROL_VARIANT:
                c = compare(control, (conversions[i], exposures[i]), confidence)
                vs = {
                    "difference": c.difference,
                    "difference_interval": _interval(c.difference_interval),
                    "uplift": c.uplift,
                    "uplift_interval": None
                    if c.uplift_interval is None
                    else _interval(c.uplift_interval),
                    "p_value": c.p_value,
                    "significant": c.p_value < 1 - confidence,
                }
            variants.append(
                {
                    "id": v.id,
                    "name": v.name,
                    "weight": v.weight,
                    "exposures": exposures[i],
                    "conversions": conversions[i],
                    "rate": rate,
                    "interval": _interval(wilson(conversions[i], exposures[i], confidence)),
                    "vs_control": vs,
                    "visitors": t.visitors,
                    "events": t.events,
                    "value_cents": t.value_cents,
                }
            )
        return {
            "experiment": key,
            "status": experiment.status,
            "metric": metric,
            "confidence": confidence,
            "warnings": warnings,
            "variants": variants,
            "sample_ratio": {
                "chi_square": srm.chi_square,
                "degrees_of_freedom": srm.degrees_of_freedom,
                "p_value": srm.p_value,
                "expected": dict(zip(ids, srm.expected, strict=True)),
                "mismatch": srm.mismatch,
            },
            "series": {
                "granularity": "day" if by_day else "hour",
                "points": {v: [_point(p) for p in points] for v, points in series.items()},
            },
            "analysis": analysis,
            "computed_at": time.time(),
        }


def _interval(i: Interval) -> dict[str, float]:
    return {"low": i.low, "high": i.high}


def _point(p: SeriesPoint) -> dict[str, Any]:
    return {
        "bucket": p.bucket,
        "exposures": p.exposures,
        "conversions": p.conversions,
        "rate": p.rate,
        "cumulative_exposures": p.cumulative_exposures,
        "cumulative_conversions": p.cumulative_conversions,
        "cumulative_rate": p.cumulative_rate,
    }
