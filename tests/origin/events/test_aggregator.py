"""Exposures and conversions end to end through a real broker: collector -> Kafka -> aggregator
(consumer group) -> RedisLike counters -> results; redelivery is counted once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from fragments import topics
from origin.core.redis_client import RedisLike
from origin.events.aggregator import Aggregator
from origin.events.counters import EventCounters
from origin.events.schema import parse_event
from tests.invalidation.support import TEST_SESSION_TIMEOUT_MS, eventually, produce_raw
from tests.origin.events.support import event, events_settings, post_signed
from tests.origin.experiments.support import EDITOR, VIEWER, hero_experiment, if_match
from tests.support.kafka_engines import Broker
from tests.support.origin_server import OriginServer

EXPOSED = 200
BUYERS = {"control": 20, "compact": 35}


@asynccontextmanager
async def running_aggregator(bootstrap: str, redis: RedisLike) -> AsyncIterator[Aggregator]:
    aggregator = Aggregator(
        bootstrap,
        "test-aggregator",
        EventCounters(redis),
        session_timeout_ms=TEST_SESSION_TIMEOUT_MS,
    )
    await aggregator.start()
    stop = asyncio.Event()
    task = asyncio.create_task(aggregator.run(stop))
    try:
        yield aggregator
    finally:
        stop.set()
        await task
        await aggregator.stop()


def traffic() -> list[dict[str, Any]]:
    """Each variant: EXPOSED visitors seen twice, some of them buying (with a click first)."""
    out: list[dict[str, Any]] = []
    for variant, buyers in BUYERS.items():
        for i in range(EXPOSED):
            visitor = f"{variant}-visitor-{i:04d}"
            out += [event("exposure", variant=variant, visitor=visitor) for _ in range(2)]
            if i < buyers:
                out.append(event("click", variant=variant, visitor=visitor, sku="SKU-00001"))
                out.append(event("purchase", variant=variant, visitor=visitor, value_cents=1000))
    return out


async def test_events_to_results_end_to_end(
    seeded: RedisLike, redis_url: str, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    sent = traffic()
    with OriginServer.for_origin(events_settings(redis_url, bootstrap)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as api:
            await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)
            await api.post("/v1/experiments/hero/start", headers=if_match(1))

            async def post_all() -> bool:
                for start in range(0, len(sent), 500):
                    r = await post_signed(api, {"events": sent[start : start + 500]})
                    if r.status_code == 503:
                        return False
                    assert r.status_code == 202, r.text
                return True

            await eventually(post_all, within=20, what="the collector accepted every event")
            await post_signed(api, {"events": sent[:300]})  # a client retry: dupes
            await produce_raw(bootstrap, topics.EXPOSURES.name, b"not json", b"k")

            async with running_aggregator(bootstrap, seeded) as aggregator:

                async def folded() -> bool:
                    return aggregator.stats.records >= len(sent) + 300 + 1

                await eventually(folded, within=30, what="the aggregator read every record")
                stats = aggregator.stats

            results = (await api.get("/v1/experiments/hero/results", headers=VIEWER)).json()

    assert stats.counted == len(sent)
    assert stats.duplicates >= 300
    assert stats.undecodable == 1
    by_id = {v["id"]: v for v in results["variants"]}
    for variant, buyers in BUYERS.items():
        v = by_id[variant]
        assert abs(v["exposures"] - EXPOSED) <= 2  # HyperLogLog: near-exact at this size
        assert abs(v["conversions"] - buyers) <= 1
        assert v["events"]["exposure"] == 2 * EXPOSED  # event counts are exact
        assert v["events"]["purchase"] == buyers
        assert v["value_cents"] == 1000 * buyers
        assert v["interval"]["low"] < v["rate"] < v["interval"]["high"]
    assert by_id["compact"]["vs_control"]["uplift"] > 0
    assert results["sample_ratio"]["mismatch"] is False
    assert results["warnings"] == []
    analysis = results["analysis"]
    (purchase,) = analysis["metrics"]
    assert purchase["metric"] == "purchase"
    assert [(v["visitors"], v["mean"]) for v in purchase["variants"]] == [
        (EXPOSED, BUYERS["control"] / EXPOSED), (EXPOSED, BUYERS["compact"] / EXPOSED),
    ]  # fmt: skip  # exact through Kafka, duplicates and redelivery
    assert analysis["checks"]["multiple_exposure"]["visitors"] == 0
    assert analysis["checks"]["sample_ratio"]["failed"] is False
    assert analysis["decision"]["verdict"] == "need_more_data"  # 200 visitors < 500 per variant
    (day,) = results["series"]["points"]["control"]
    assert day["cumulative_exposures"] == day["exposures"] == by_id["control"]["exposures"]


async def test_folding_is_idempotent_per_event_id(seeded: RedisLike) -> None:
    counters = EventCounters(seeded)
    now = time.time()
    events = [parse_event(event("exposure", visitor=f"v{i}"), now) for i in range(50)]

    first = await counters.fold(events)
    again = await counters.fold(events)
    totals = await counters.totals("hero", ["control"], ["exposure"])

    assert (first, again) == (50, 0)
    assert totals["control"].events["exposure"] == 50
    assert totals["control"].visitors["exposure"] == 50


async def test_a_sample_ratio_mismatch_is_a_loud_warning(seeded: RedisLike, redis_url: str) -> None:
    counters = EventCounters(seeded)
    now = time.time()
    skewed = [
        parse_event(event("exposure", variant=v, visitor=f"{v}-{i}"), now)
        for v, n in (("control", 600), ("compact", 400))
        for i in range(n)
    ]
    await counters.fold(skewed)
    with OriginServer.for_origin(events_settings(redis_url, None)) as server:
        async with httpx.AsyncClient(base_url=server.url) as api:
            await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)
            results = (await api.get("/v1/experiments/hero/results", headers=VIEWER)).json()
    assert results["sample_ratio"]["mismatch"] is True
    assert results["sample_ratio"]["p_value"] < 0.001
    assert results["warnings"][0].startswith("SAMPLE RATIO MISMATCH")
