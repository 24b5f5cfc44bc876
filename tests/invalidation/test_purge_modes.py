"""Hard and soft purges end to end on a real Redis and the fake purge APIs: the pipeline marks
what must never be served stale (sell-outs, price changes) hard and other content changes
(lists, rank order) soft; the queue keeps a tag hard once any change asked for it hard; the
worker sends each request in one mode, hard first; a purger's budget of requests and tags holds
(Akamai's published buckets, enforced by the fake as the API does, never answer 429)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag, key_of_bundle_tag
from invalidation.events import PriceEvent
from invalidation.metrics import InvalidationMetrics
from invalidation.purge_worker import PurgeWorker
from invalidation.purgers.akamai import AkamaiPurger
from invalidation.purgers.cloudflare import CloudflarePurger
from invalidation.ratelimit import (
    AKAMAI_REQUESTS,
    AKAMAI_TAGS,
    PurgeBudget,
    TokenBucket,
)
from invalidation.settings import AkamaiSettings, CloudflareSettings
from origin.core import keys
from origin.core.purge_queue import (
    PRIORITY_HARD,
    PRIORITY_SELL_OUT,
    PRIORITY_SOFT,
    PurgeMode,
    PurgeQueue,
    PurgeRequest,
    priority_of,
    since_ms_of,
)
from tests.invalidation.support import WHEN, World, record_of
from tests.support.fake_purge_api import (
    DEFAULT_AKAMAI,
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


def some_keys(world: World, n: int) -> list[FragmentKey]:
    return sorted(world.recomputer.all_keys(), key=lambda k: k.cache_key)[:n]


async def test_a_hard_request_wins_over_a_soft_one_for_the_same_tag(world: World) -> None:
    soft_first, hard_first = some_keys(world, 2)
    store = world.store
    await store.enqueue_purge(soft_first, PurgeRequest((CF,), PRIORITY_SOFT, at_ms=100))
    await store.enqueue_purge(soft_first, PurgeRequest((CF,), PRIORITY_HARD, at_ms=200))
    await store.enqueue_purge(hard_first, PurgeRequest((CF,), PRIORITY_HARD, at_ms=300))
    await store.enqueue_purge(hard_first, PurgeRequest((CF,), PRIORITY_SOFT, at_ms=50))
    queued = await world.queued_tags(CF)
    assert {t: (priority_of(s), since_ms_of(s)) for t, s in queued.items()} == {
        bundle_tag(soft_first): (PRIORITY_HARD, 100),
        bundle_tag(hard_first): (PRIORITY_HARD, 50),
    }, "hard wins either way; the oldest change time is kept for the latency metric"
    pending = await PurgeQueue(world.redis, CF, list(world.recomputer.partitions)).peek(10)
    assert {p.mode for p in pending} == {PurgeMode.HARD}


async def test_price_changes_are_hard_and_list_style_changes_soft(world: World) -> None:
    counts: dict[str, int] = {}
    for skus in (await world.bundle_skus()).values():
        for sku in skus:
            counts[sku] = counts.get(sku, 0) + 1
    sku = max(sorted(counts), key=counts.__getitem__)
    repriced = PriceEvent("reprice-1", sku, 1, "USD", 10**9, WHEN)
    report = await world.pipeline((CF,)).process([record_of(repriced, 0)])
    assert report.changed, "a price shown in bundles changed them"
    queued = await world.queued_tags(CF)
    showing = {bundle_tag(k) for k, skus in (await world.bundle_skus()).items() if sku in skus}
    hard = {t for t, s in queued.items() if priority_of(s) <= PRIORITY_HARD}
    assert showing <= hard, "every bundle showing the new price is evicted"
    assert all(priority_of(s) in (PRIORITY_HARD, PRIORITY_SOFT) for s in queued.values())
    for tag, score in queued.items():
        if priority_of(score) == PRIORITY_SOFT:
            key = key_of_bundle_tag(tag)
            assert key is not None
            assert tag not in showing


def cloudflare_worker(world: World, api: FakePurgeApi, http: httpx.AsyncClient) -> PurgeWorker:
    settings = CloudflareSettings(
        DEFAULT_ZONE_ID, DEFAULT_CLOUDFLARE_TOKEN, api_base=api.cloudflare_api_base
    )
    return PurgeWorker(
        world.redis,
        CloudflarePurger(http, settings),
        PurgeQueue(world.redis, CF, list(world.recomputer.partitions)),
        InvalidationMetrics.create(),
    )


async def test_the_worker_sends_one_mode_per_request_hard_first(
    world: World, fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    bundles = some_keys(world, 9)
    priorities = [PRIORITY_SOFT] * 4 + [PRIORITY_HARD] * 3 + [PRIORITY_SELL_OUT] * 2
    for i, (key, priority) in enumerate(zip(bundles, priorities, strict=True)):
        await world.store.enqueue_purge(key, PurgeRequest((CF,), priority, at_ms=1000 + i))
    w = cloudflare_worker(world, fake_purge_api, http)
    while await w.round():
        pass
    calls = fake_purge_api.accepted(CF)
    assert [(c.soft, len(c.tags)) for c in calls] == [(False, 5), (True, 4)]
    assert set(calls[0].tags) == {bundle_tag(k) for k in bundles[4:]}
    assert calls[0].path.endswith("/purge_cache")
    assert calls[1].path.endswith("/invalidate_cache")
    assert await w.queue.depth() == 0


async def test_akamai_budget_of_requests_and_tags_holds_without_a_429(
    world: World, http: httpx.AsyncClient
) -> None:
    """Akamai's tag bucket nearly spent (by other clients of the account): the worker sends
    until its tag tokens are spent, then defers; the fake keeps Akamai's own buckets and never
    had to refuse. A worker without the budget is refused (429) at once."""
    bundles = sorted(world.recomputer.all_keys(), key=lambda k: k.cache_key)[:60]
    left = 25
    assert len(bundles) > left + 5
    with FakePurgeApi(akamai_limits=True) as api:
        api.spend_akamai_tags(AKAMAI_TAGS.capacity - left)
        now = time.monotonic()
        budget = PurgeBudget(TokenBucket(AKAMAI_REQUESTS, now), TokenBucket(AKAMAI_TAGS, now))
        assert budget.tags is not None
        budget.tags.take(now, AKAMAI_TAGS.capacity - left)
        settings = AkamaiSettings(
            api.url,
            DEFAULT_AKAMAI.client_token,
            DEFAULT_AKAMAI.client_secret,
            DEFAULT_AKAMAI.access_token,
        )

        def akamai_worker(budget: PurgeBudget | None) -> PurgeWorker:
            return PurgeWorker(
                world.redis,
                AkamaiPurger(http, settings),
                PurgeQueue(world.redis, "akamai", list(world.recomputer.partitions)),
                InvalidationMetrics.create(),
                budget,
            )

        w = akamai_worker(budget)
        for key in bundles:
            await world.store.enqueue_purge(key, PurgeRequest(("akamai",), PRIORITY_SOFT, 1))
        async with asyncio.timeout(10):
            for _ in range(4):
                await w.round()
        sent = sum(len(c.tags) for c in api.accepted("akamai"))
        deferred = w.metrics.registry.get_sample_value(
            "shelfedge_purge_deferred_total", {"purger": "akamai"}
        )
        assert left <= sent < left + 5, "the tag tokens bound what is sent"
        assert deferred, "then the worker waits for tag tokens"
        assert [c.status for c in api.calls()] == [201] * len(api.calls()), "never a 429"
        assert await w.queue.depth() == len(bundles) - sent

        unbudgeted = akamai_worker(None)
        await world.redis.delete(keys.purge_lease_key("akamai"))  # as if `w` had stopped
        async with asyncio.timeout(10):
            await unbudgeted.round()
        assert api.calls()[-1].status == 429, "the fake enforces the buckets it was given"
