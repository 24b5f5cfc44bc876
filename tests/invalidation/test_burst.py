"""A burst: 10,000 stock events on 200 hot SKUs in about a second, purged through a small
Cloudflare-plan token bucket (rate 2/s, burst 3) against the fake Cloudflare API, whose first
answers are 429, 429 and 502 (the worker must retry; failed requests count against the bucket).

The fake records each request's arrival; the test checks the token-bucket bound over every
interval, at most 100 tags per request, that the queue drains, and that every bundle that
showed a SKU now sold out was purged at a moment its stored bundle no longer showed it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from invalidation.demo_events import DemoEventStream, EventMix
from invalidation.events import Event
from invalidation.metrics import InvalidationMetrics
from invalidation.purge_worker import PurgeWorker
from invalidation.service import build_purgers
from invalidation.settings import CloudflareSettings, InvalidationSettings
from origin.core import keys
from origin.core.purge_queue import PurgeQueue
from origin.core.redis_text import as_text
from tests.invalidation.support import (
    GroupOffsets,
    World,
    consumer_config,
    eventually,
    expected_product_fields,
    log_ends,
    produce,
    running_consumer,
    state_differences,
)
from tests.support.fake_purge_api import (
    DEFAULT_CLOUDFLARE_TOKEN,
    DEFAULT_ZONE_ID,
    Api,
    FakePurgeApi,
    PurgeCall,
)
from tests.support.kafka_engines import Broker
from tests.support.redis_topology import SyncRedisLike, connect_sync

EVENTS = 10_000
HOT_SKUS = 200
RATE = 2.0
CAPACITY = 3
MAX_TAGS = 100
ARRIVAL_SLACK_S = 0.1
"""Arrival times include the request's trip through the loop and socket (bounded by this)."""

BundleSkus = dict[str, frozenset[str]]


def shown_at_purge(redis_url: str) -> tuple[FakePurgeApi, SyncRedisLike]:
    """A fake whose accepted purges record, per bundle tag, the SKUs the stored bundle showed
    at that moment (read from Redis in the server thread before answering)."""
    client = connect_sync(redis_url)

    def observe(api: Api, tags: tuple[str, ...]) -> BundleSkus:
        out: BundleSkus = {}
        for tag in tags:
            if tag.startswith("bundle:"):
                key = FragmentKey.from_cache_key("bundle/" + tag.removeprefix("bundle:"))
                raw = client.hget(keys.partition_bundles_key(key.partition), key.cache_key)
                out[tag] = frozenset(as_text(raw).split()) if raw else frozenset()
        return out

    return FakePurgeApi(on_accept=observe), client


@pytest.fixture
async def observing_api(redis_url: str) -> AsyncIterator[FakePurgeApi]:
    api, client = shown_at_purge(redis_url)
    with api:
        yield api
    client.close()


def bucket_violations(calls: list[PurgeCall]) -> list[str]:
    """Intervals whose request count exceeds capacity + rate * length (+ arrival slack)."""
    times = sorted(c.at for c in calls)
    out: list[str] = []
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            count, length = j - i + 1, times[j] - start
            if count > CAPACITY + RATE * (length + ARRIVAL_SLACK_S):
                out.append(f"{count} requests in {length:.3f}s")
    return out


@pytest.mark.timeout(180)
async def test_a_burst_is_purged_within_the_plan_rate_and_sell_outs_are_never_missed(
    world: World, fresh_kafka_broker: Broker, observing_api: FakePurgeApi
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = f"burst-{uuid.uuid4().hex[:10]}"
    mix = EventMix(price=0.0, promo=0.0, sell_out=0.01, restock=0.01, hot_share=1.0)
    stream = DemoEventStream(world.products, seed=99, hot_skus=HOT_SKUS, mix=mix, id_prefix="b")
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())
    hot = {p.sku for p in world.products[:HOT_SKUS]}
    assert {e.sku for e in events} <= hot
    shown_before: dict[str, set[FragmentKey]] = {}
    for key, skus in (await world.bundle_skus()).items():
        for sku in skus:
            shown_before.setdefault(sku, set()).add(key)

    settings = InvalidationSettings(
        purgers=("cloudflare",),
        cloudflare=CloudflareSettings(
            zone_id=DEFAULT_ZONE_ID,
            api_token=DEFAULT_CLOUDFLARE_TOKEN,
            api_base=observing_api.cloudflare_api_base,
            rate_per_second=RATE,
            bucket_size=CAPACITY,
        ),
    )
    metrics = InvalidationMetrics.create()
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=5.0) as http:
        [(purger, bucket)] = build_purgers(settings, http)
        queue = PurgeQueue(world.redis, purger.name, list(world.recomputer.partitions))
        worker = PurgeWorker(world.redis, purger, queue, metrics, bucket)
        observing_api.fail_next(2, status=429, retry_after=1)
        observing_api.fail_next(1, status=502)
        worker_task = asyncio.create_task(worker.run(stop))
        config = consumer_config(bootstrap, group_id, window_ms=20, max_in_flight=200)
        try:
            async with (
                running_consumer(config, world.pipeline((purger.name,))) as run,
                GroupOffsets(bootstrap, group_id) as offsets,
            ):
                started = time.monotonic()
                produced = await produce(bootstrap, events)
                produce_seconds = time.monotonic() - started
                ends = log_ends(produced)
                await eventually(
                    lambda: offsets.reached(ends), within=90, what="the burst was consumed"
                )
                assert run.count("applied") == EVENTS

            async def drained() -> bool:
                return await queue.depth() == 0

            await eventually(drained, within=60, what="the purge queue drained")
        finally:
            stop.set()
            await asyncio.wait_for(worker_task, timeout=10)

    calls = observing_api.calls("cloudflare")
    assert calls, "nothing was purged"
    assert [c.status for c in calls[:3]] == [429, 429, 502]
    assert all(c.accepted for c in calls[3:])
    assert max(len(c.tags) for c in calls) <= MAX_TAGS
    assert bucket_violations(calls) == []
    deferred = metrics.registry.get_sample_value(
        "shelfedge_purge_deferred_total", {"purger": "cloudflare"}
    )
    assert deferred, "the bucket never had to hold a purge back: the burst was not a burst"

    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    sold_out = {sku for sku in hot if want[sku]["stock"] == "0" and sku in shown_before}
    assert sold_out, "the burst sold nothing out"
    missed: list[str] = []
    for sku in sorted(sold_out):
        for key in shown_before[sku]:
            tag = bundle_tag(key)
            purged_without = [
                c
                for c in calls
                if isinstance(c.observed, dict) and sku not in c.observed.get(tag, {sku})
            ]
            if not purged_without:
                missed.append(f"{tag} never purged after {sku} left it")
    assert missed == []
    assert await world.consistency_problems() == []
    print(
        f"burst: produced {EVENTS} events in {produce_seconds:.2f}s; {len(calls)} purge requests,"
        f" {deferred:.0f} deferred rounds; {len(sold_out)} SKUs sold out"
    )
