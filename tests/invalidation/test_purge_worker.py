"""`PurgeWorker` and `PurgeQueue` on a real Redis against the fake Cloudflare API.

Failures (429, 5xx, a refused credential) keep the tags queued until a purge is accepted;
a change enqueued while its purge is in flight is purged again, never lost; sell-outs first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from fragments import keys
from invalidation.events import InventoryEvent
from invalidation.metrics import InvalidationMetrics
from invalidation.purge_queue import PurgeQueue
from invalidation.purge_worker import PurgeWorker
from invalidation.purgers.cloudflare import CloudflarePurger
from invalidation.ratelimit import BucketSpec, TokenBucket
from origin.settings import CloudflareSettings
from origin.store import PurgeRequest
from tests.invalidation.support import WHEN, World, record_of
from tests.support.fake_purge_api import (
    DEFAULT_CLOUDFLARE_TOKEN,
    DEFAULT_ZONE_ID,
    Api,
    FakePurgeApi,
)

CF: Api = "cloudflare"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def worker(
    world: World, api: FakePurgeApi, http: httpx.AsyncClient, token: str = DEFAULT_CLOUDFLARE_TOKEN
) -> PurgeWorker:
    settings = CloudflareSettings(DEFAULT_ZONE_ID, token, api_base=api.cloudflare_api_base)
    return PurgeWorker(
        world.redis,
        CloudflarePurger(http, settings),
        PurgeQueue(world.redis, CF, list(world.recomputer.partitions)),
        InvalidationMetrics.create(),
        TokenBucket(BucketSpec(100.0, 100), 0.0),
    )


async def sell_out_top_sku(world: World) -> set[str]:
    """Sell out the most shown SKU through the pipeline; return the bundle tags queued."""
    counts: dict[str, int] = {}
    for skus in (await world.bundle_skus()).values():
        for sku in skus:
            counts[sku] = counts.get(sku, 0) + 1
    sku = max(sorted(counts), key=counts.__getitem__)
    events = [
        InventoryEvent(f"so-{loc}", sku, loc, 0, i + 1, WHEN)
        for i, loc in enumerate(sorted(world.product(sku).locations))
    ]
    report = await world.pipeline((CF,)).process([record_of(e, i) for i, e in enumerate(events)])
    tags = {keys.bundle_tag(k) for k in report.changed}
    assert tags
    assert set(await world.queued_tags(CF)) == tags
    return tags


def outcomes(w: PurgeWorker) -> dict[str, float]:
    registry = w.metrics.registry
    return {
        o: registry.get_sample_value("shelfedge_purge_requests_total", {"purger": CF, "outcome": o})
        or 0.0
        for o in ("ok", "retry", "rejected")
    }


def failures(w: PurgeWorker) -> dict[str, float]:
    """`shelfedge_purge_failures_total` of `w` by status class."""
    registry = w.metrics.registry
    return {
        c: registry.get_sample_value(
            "shelfedge_purge_failures_total", {"purger": CF, "status_class": c}
        )
        or 0.0
        for c in ("429", "4xx", "5xx", "other")
    }


async def test_throttled_and_failed_purges_keep_their_tags_until_accepted(
    world: World, fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    tags = await sell_out_top_sku(world)
    w = worker(world, fake_purge_api, http)
    fake_purge_api.fail_next(1, status=429, retry_after=1)
    fake_purge_api.fail_next(1, status=503)
    assert await w.round()
    assert set(await world.queued_tags(CF)) == tags
    assert await w.round()
    assert set(await world.queued_tags(CF)) == tags
    assert await w.round()
    assert await world.queued_tags(CF) == {}
    assert await w.queue.depth() == 0
    calls = fake_purge_api.calls(CF)
    assert [c.status for c in calls] == [429, 503, 200]
    assert all(set(c.tags) == tags for c in calls), "the same tags were retried"
    assert outcomes(w) == {"ok": 1.0, "retry": 2.0, "rejected": 0.0}
    assert failures(w) == {"429": 1.0, "4xx": 0.0, "5xx": 1.0, "other": 0.0}
    assert not await w.round(), "nothing left to purge"


async def test_a_refused_purge_is_not_dropped(
    world: World, fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    tags = await sell_out_top_sku(world)
    refused = worker(world, fake_purge_api, http, token="revoked-token")
    assert await refused.round()
    assert [c.status for c in fake_purge_api.calls(CF)] == [403]
    assert set(await world.queued_tags(CF)) == tags, "a refused purge must stay queued"
    assert outcomes(refused)["rejected"] == 1.0
    assert failures(refused) == {"429": 0.0, "4xx": 1.0, "5xx": 0.0, "other": 0.0}
    await world.redis.delete(keys.purge_lease_key(CF))  # hand over to a fixed worker
    assert await worker(world, fake_purge_api, http).round()
    assert await world.queued_tags(CF) == {}


async def test_a_change_enqueued_while_its_purge_is_in_flight_is_purged_again(
    world: World,
) -> None:
    tags = await sell_out_top_sku(world)
    queue = PurgeQueue(world.redis, CF, list(world.recomputer.partitions))
    pending = await queue.peek(100)
    assert {p.tag for p in pending} == tags
    assert all(p.priority == 0 for p in pending)
    moved = pending[0]
    # The bundle changes again after the purge request went out (its generation moves).
    key = keys.FragmentKey.from_cache_key("bundle/" + moved.tag.removeprefix("bundle:"))
    await world.store.enqueue_purge(key, PurgeRequest((CF,), priority=1, at_ms=5))
    assert await queue.ack(pending) == len(pending) - 1
    assert set(await world.queued_tags(CF)) == {moved.tag}
    [again] = await queue.peek(100)
    assert (again.tag, again.priority) == (moved.tag, 0), "the earlier, more urgent score stays"
    assert await queue.ack([again]) == 1
    assert await queue.depth() == 0


async def test_only_the_lease_holder_purges(
    world: World, fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    await sell_out_top_sku(world)
    first, second = worker(world, fake_purge_api, http), worker(world, fake_purge_api, http)
    await world.redis.set(keys.purge_lease_key(CF), first.instance, px=5000)
    assert not await second.round()
    assert fake_purge_api.calls() == []
    assert await first.round()
    assert len(fake_purge_api.accepted(CF)) == 1
