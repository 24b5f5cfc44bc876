"""`PurgeWorker` and `PurgeQueue` on a real Redis against the fake purge APIs.

Transient failures (429 with its Retry-After, 5xx) keep the tags queued and are retried until
accepted; a batch the API rejects is split until the refused tag is isolated and parked, and
the rest is purged; a refused credential stops that purger (its queue intact) while the others
carry on; a parked tag can be re-driven. A change enqueued while its purge is in flight is
purged again, never lost; sell-outs first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from invalidation.events import InventoryEvent
from invalidation.metrics import InvalidationMetrics
from invalidation.purge_worker import (
    MAX_BACKOFF_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    PurgeWorker,
    backoff_seconds,
)
from invalidation.purgers.cloudflare import CloudflarePurger
from invalidation.purgers.local_edge import LocalEdgePurger
from invalidation.ratelimit import BucketSpec, PurgeBudget, TokenBucket
from invalidation.settings import CloudflareSettings
from origin.core import keys
from origin.core.purge_queue import PurgeQueue, PurgeRequest, parked_purges, redrive
from origin.errors import CannotRedrive
from tests.invalidation.support import WHEN, World, eventually, record_of
from tests.support.fake_purge_api import (
    DEFAULT_CLOUDFLARE_TOKEN,
    DEFAULT_ZONE_ID,
    Api,
    FakePurgeApi,
)

CF: Api = "cloudflare"
EDGE: Api = "local-edge"
AMPLE = BucketSpec(100.0, 100)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


def worker(
    world: World,
    api: FakePurgeApi,
    http: httpx.AsyncClient,
    token: str = DEFAULT_CLOUDFLARE_TOKEN,
    *,
    bucket: BucketSpec = AMPLE,
    metrics: InvalidationMetrics | None = None,
) -> PurgeWorker:
    settings = CloudflareSettings(DEFAULT_ZONE_ID, token, api_base=api.cloudflare_api_base)
    return PurgeWorker(
        world.redis,
        CloudflarePurger(http, settings),
        PurgeQueue(world.redis, CF, list(world.recomputer.partitions)),
        metrics or InvalidationMetrics.create(),
        PurgeBudget(TokenBucket(bucket, 0.0)),
    )


def local_edge_worker(
    world: World, api: FakePurgeApi, http: httpx.AsyncClient, metrics: InvalidationMetrics
) -> PurgeWorker:
    return PurgeWorker(
        world.redis,
        LocalEdgePurger(http, api.url),
        PurgeQueue(world.redis, EDGE, list(world.recomputer.partitions)),
        metrics,
    )


async def drain(w: PurgeWorker, *, rounds: int = 60, within: float = 30.0) -> int:
    """Run rounds until the worker finds nothing to do; return how many sent something."""
    busy = 0
    async with asyncio.timeout(within):
        for _ in range(rounds):
            if not await w.round():
                return busy
            busy += 1
    raise AssertionError(f"{w.purger.name} still busy after {rounds} rounds")


async def sell_out_top_sku(world: World, purgers: tuple[str, ...] = (CF,)) -> set[str]:
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
    report = await world.pipeline(purgers).process([record_of(e, i) for i, e in enumerate(events)])
    tags = {bundle_tag(k) for k in report.changed}
    assert len(tags) >= 8, "a batch worth splitting"
    for purger in purgers:
        assert set(await world.queued_tags(purger)) == tags
    return tags


def sample(w: PurgeWorker, metric: str, **labels: str) -> float:
    value = w.metrics.registry.get_sample_value(metric, {"purger": w.purger.name, **labels})
    return value or 0.0


def outcomes(w: PurgeWorker) -> dict[str, float]:
    return {
        o: sample(w, "shelfedge_purge_requests_total", outcome=o)
        for o in ("ok", "retry", "rejected", "stopped")
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


@pytest.mark.parametrize(
    ("failures", "retry_after", "jitter", "expected"),
    [
        (1, None, 1.0, 0.2),
        (3, None, 0.5, 0.4),
        (20, None, 1.0, MAX_BACKOFF_SECONDS),  # bounded
        (1, 1.0, 0.5, 1.0),  # Retry-After honoured over a shorter backoff
        (20, 0.5, 1.0, MAX_BACKOFF_SECONDS),  # a shorter Retry-After does not shorten it
        (1, 10_000.0, 1.0, MAX_RETRY_AFTER_SECONDS),  # an absurd Retry-After is capped
    ],
)
def test_backoff_is_exponential_bounded_and_honours_retry_after(
    failures: int, retry_after: float | None, jitter: float, expected: float
) -> None:
    assert backoff_seconds(failures, retry_after, jitter) == pytest.approx(expected)


async def test_throttled_and_failed_purges_are_retried_until_accepted(
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
    assert calls[1].at - calls[0].at >= 1.0, "the 429's Retry-After: 1 was not honoured"
    assert outcomes(w) == {"ok": 1.0, "retry": 2.0, "rejected": 0.0, "stopped": 0.0}
    assert await parked_purges(world.redis, CF) == [], "a transient failure parks nothing"
    assert failures(w) == {"429": 1.0, "4xx": 0.0, "5xx": 1.0, "other": 0.0}
    assert not await w.round(), "nothing left to purge"


async def test_a_batch_with_a_refused_tag_is_split_the_rest_purged_and_the_tag_parked(
    world: World,
    fake_purge_api: FakePurgeApi,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="shelfedge.purge")
    tags = await sell_out_top_sku(world)
    bad = sorted(tags)[len(tags) // 3]
    fake_purge_api.refuse_tags(bad)
    # Splitting spends the CDN's budget: with 3 tokens and no refill, 3 requests go out.
    budget = worker(world, fake_purge_api, http, bucket=BucketSpec(1e-6, 3))
    for _ in range(4):
        assert await budget.round()
    assert len(fake_purge_api.calls(CF)) == 3, "a split request went out without a token"
    assert sample(budget, "shelfedge_purge_deferred_total") == 1.0

    left = set(await world.queued_tags(CF))
    assert bad in left
    assert len(left) < len(tags), "the budget's requests purged a clean half"
    await world.redis.delete(keys.purge_lease_key(CF))  # hand over, with a full bucket
    w = worker(world, fake_purge_api, http)
    await drain(w)
    assert await world.queued_tags(CF) == {}
    assert fake_purge_api.accepted_tags(CF) == tags - {bad}
    [parked] = await parked_purges(world.redis, CF)
    assert (parked.tag, parked.status, parked.reason) == (bad, 400, "http_400")
    assert parked.priority == 0, "parked with its sell-out priority"
    assert bad in parked.detail
    assert sample(w, "shelfedge_purges_parked_total", reason="http_400") == 1.0
    calls = fake_purge_api.calls(CF)[3:]
    assert calls[0].status == 400
    assert set(calls[0].tags) == left, "a fresh worker starts from the whole queue"
    assert sample(w, "shelfedge_purge_split_requests_total") == len(calls) - 1
    assert len(calls) <= 2 * len(left).bit_length() + 1, "isolated by bisection"
    assert all(set(c.tags) != {bad} or c.status == 400 for c in calls)
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "purge_parked"]
    assert (line.__dict__["purger"], line.__dict__["tag"], line.__dict__["status"]) == (
        CF,
        bad,
        400,
    )
    assert bad in line.getMessage()


async def test_a_refused_credential_stops_its_purger_and_the_others_carry_on(
    world: World,
    fake_purge_api: FakePurgeApi,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tags = await sell_out_top_sku(world, (CF, EDGE))
    metrics = InvalidationMetrics.create()
    refused = worker(world, fake_purge_api, http, token="revoked-token", metrics=metrics)
    edge = local_edge_worker(world, fake_purge_api, http, metrics)
    stop = asyncio.Event()
    runs = [asyncio.create_task(w.run(stop)) for w in (refused, edge)]
    try:
        await asyncio.wait_for(asyncio.shield(runs[0]), timeout=10)  # stops by itself

        async def edge_drained() -> bool:
            return await edge.queue.depth() == 0

        await eventually(edge_drained, within=10, what="the local edge purger drained")
        assert not runs[1].done(), "the other purger keeps running"
    finally:
        stop.set()
        await asyncio.gather(*runs)
    assert refused.stopped is not None
    assert refused.stopped.status == 403
    assert [c.status for c in fake_purge_api.calls(CF)] == [403], "never retried"
    assert set(await world.queued_tags(CF)) == tags, "its queue is intact"
    assert await parked_purges(world.redis, CF) == [], "nothing parked for a credential"
    assert fake_purge_api.accepted_tags(EDGE) == tags
    assert sample(refused, "shelfedge_purger_stopped") == 1.0
    assert failures(refused) == {"429": 0.0, "4xx": 1.0, "5xx": 0.0, "other": 0.0}
    assert sample(edge, "shelfedge_purger_stopped") == 0.0
    assert outcomes(refused)["stopped"] == 1.0
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "purger cloudflare STOPPED" in error.getMessage()
    assert "HTTP 403" in error.getMessage()
    assert await world.redis.get(keys.purge_lease_key(CF)) is None, "lease released"

    fixed = worker(world, fake_purge_api, http)  # credentials fixed, purger restarted
    await drain(fixed)
    assert await world.queued_tags(CF) == {}
    assert fake_purge_api.accepted_tags(CF) == tags


async def test_a_parked_tag_is_redriven_with_its_priority_and_then_purged(
    world: World, fake_purge_api: FakePurgeApi, http: httpx.AsyncClient
) -> None:
    tags = await sell_out_top_sku(world)
    bad = min(tags)
    fake_purge_api.refuse_tags(bad)
    w = worker(world, fake_purge_api, http)
    await drain(w)
    assert [p.tag for p in await parked_purges(world.redis, CF)] == [bad]
    assert await world.queued_tags(CF) == {}

    fake_purge_api.accept_tags(bad)  # the operator fixed what the API objected to
    [redriven] = await redrive(world.redis, CF, [bad])
    assert redriven.tag == bad
    assert await parked_purges(world.redis, CF) == []
    queued = await world.queued_tags(CF)
    assert list(queued) == [bad]
    assert queued[bad] == redriven.score, "same priority and age as when it was parked"
    assert await drain(w) == 1
    assert fake_purge_api.accepted(CF)[-1].tags == (bad,)
    assert await world.queued_tags(CF) == {}


async def test_redrive_names_what_is_not_parked(world: World) -> None:
    with pytest.raises(CannotRedrive, match=r"not parked for purger 'cloudflare': bundle:nope"):
        await redrive(world.redis, CF, ["bundle:nope"])


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
    key = FragmentKey.from_cache_key("bundle/" + moved.tag.removeprefix("bundle:"))
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
