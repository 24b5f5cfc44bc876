"""kill -9 of a Redis Cluster master during an event stream: failover, and nothing is lost.

The real consumer (`python -m shelfedge consume`) runs as a subprocess against the session's
Redis Cluster (`REDIS_URL=redis+cluster://...`, one replica acknowledged before every commit,
windows retried while Redis is unavailable) and a broker of the test's own; the origin app runs
in-process on the same cluster. The master serving the home-hero bundle's slot is SIGKILLed
while the consumer is mid-stream; its replica is promoted (`wait_for_failover`); the dead node
is then started again (it rejoins as the new master's replica, as a supervisor would bring it
back), which the one-replica barrier waits for. Checked:

- no offset committed ahead of its effects: right after the failover, every event below a
  committed offset is applied on the promoted masters;
- the consumer process never exits and reaches the log end within `RECOVERY_BOUND_S` of the
  node's return; every SKU ends in its last-version-wins state, each event id applied once,
  lists and bundles equal a fresh recompute, every changed bundle purged;
- the origin answers every request during the gap within `REQUEST_BOUND_S`, either normally or
  503 with Retry-After (never hangs), and serves the bundle again within `RECOVERY_BOUND_S` of
  the promotion.

That the edge keeps serving stale through such 503s is the edge's stale-if-error, tested in
tests/edge (the edge never talks to Redis).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import TopicPartition
from redis.asyncio.cluster import RedisCluster as ClusterClient

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from invalidation.demo_events import DemoEventStream
from invalidation.events import Event, topic_of
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text
from origin.settings import Settings
from origin.web.app import create_app
from shelfedge.localstack import RedisCluster
from tests.invalidation.consume_process import ConsumeProcess
from tests.invalidation.support import (
    GroupOffsets,
    Produced,
    World,
    eventually,
    expected_product_fields,
    log_ends,
    produce,
    seed_world,
    state_differences,
)
from tests.invalidation.test_kill9 import is_applied
from tests.support.fake_purge_api import FakePurgeApi
from tests.support.kafka_engines import Broker
from tests.support.redis_topology import cluster_url, connect

EVENTS = 3000
ORIGIN_TIMEOUT_MS = 200
REQUEST_BOUND_S = 2.0
"""Every origin request during the failover answers within this (its Redis deadline is 0.2 s;
the rest is this process's event loop on a loaded machine: 1.3 s was seen at load average 10).
A request that waited for the failover instead would take its whole length (seconds)."""
RECOVERY_BOUND_S = 30.0
"""The origin serves again, and the consumer reaches the log end, within this."""
HERO = FragmentKey("home-hero", "everyone", "a")
PATHS = (
    "/v1/bundles/home-hero?segment=everyone",
    "/v1/fragments/home-hero?segment=everyone",
    "/v1/products/SKU-00001",
    "/v1/products/SKU-00150",
)


@dataclass(frozen=True, slots=True)
class Answer:
    path: str
    status: int
    seconds: float
    retry_after: str | None
    detail: str


async def poll_origin(client: httpx.AsyncClient, stop: asyncio.Event, out: list[Answer]) -> None:
    """Ask the origin for every path, over and over, until `stop`; record each answer."""
    while not stop.is_set():
        for path in PATHS:
            started = time.perf_counter()
            response = await client.get(path, timeout=10.0)
            out.append(
                Answer(
                    path,
                    response.status_code,
                    time.perf_counter() - started,
                    response.headers.get("retry-after"),
                    response.text[:300] if response.status_code >= 500 else "",
                )
            )
        await asyncio.sleep(0.02)


async def master_serving(redis: RedisLike, cluster: RedisCluster, redis_key: str) -> int:
    """The index (in `kill_master`'s port order) of the master serving `redis_key`'s slot."""
    assert isinstance(redis, ClusterClient)
    await redis.initialize()
    node = redis.get_node_from_key(redis_key)
    assert node is not None
    return [m.port for m in cluster.masters()].index(int(node.port))


async def committed_ahead(
    world: World, offsets: GroupOffsets, produced: list[Produced]
) -> list[Produced]:
    """Events below a committed offset that the (promoted) masters do not hold."""
    committed = await offsets.committed()
    state = await world.product_fields()
    return [
        p
        for p in produced
        if p.offset < committed[TopicPartition(topic_of(p.event), p.partition)]
        and not is_applied(state[p.event.sku], p.event)
    ]


@pytest.mark.timeout(300)
async def test_a_master_killed_mid_stream_fails_over_and_loses_nothing(
    redis_cluster: RedisCluster,
    fresh_kafka_broker: Broker,
    fake_purge_api: FakePurgeApi,
    tmp_path: Path,
) -> None:
    url = cluster_url(redis_cluster)
    redis = connect(url)
    await redis.flushall()
    world = await seed_world(redis)
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = f"failover-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "REDIS_URL": url,
        "SHELFEDGE_REDIS_MIN_REPLICAS": "1",
        "SHELFEDGE_REDIS_OUTAGE_RETRY_MS": str(int(RECOVERY_BOUND_S * 1000)),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SHELFEDGE_CONSUMER_GROUP": group_id,
        "SHELFEDGE_PURGERS": "local-edge",
        "SHELFEDGE_LOCAL_EDGE_URL": fake_purge_api.url,
        "SHELFEDGE_CONSUMER_METRICS_PORT": "0",
        "SHELFEDGE_MAX_IN_FLIGHT": "100",
        "SHELFEDGE_COALESCE_MS": "20",
    }
    hashes_before = await world.content_hashes()
    stream = DemoEventStream(world.products, seed=33, id_prefix="fo")
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())
    produced = await produce(bootstrap, events)
    ends = log_ends(produced)
    victim_index = await master_serving(redis, redis_cluster, keys.bundle_key(HERO))

    app = create_app(Settings(redis_url=url, redis_timeout_ms=ORIGIN_TIMEOUT_MS))
    answers: list[Answer] = []
    stop_polling = asyncio.Event()
    consumer = ConsumeProcess(env, tmp_path / "consume.log")
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://origin.test"
            ) as origin,
            GroupOffsets(bootstrap, group_id) as offsets,
        ):

            async def origin_serves() -> bool:
                return (await origin.get(PATHS[0], timeout=10.0)).status_code == 200

            # Warm up: the first requests discover the cluster's slots and connect.
            await eventually(origin_serves, within=10, what="the origin served the bundle")

            async def some_committed() -> bool:
                consumer.assert_running()
                return sum((await offsets.committed()).values()) > 0

            await eventually(some_committed, within=60, what="the consumer committed a window")
            poller = asyncio.create_task(poll_origin(origin, stop_polling, answers))
            killed = redis_cluster.kill_master(victim_index)
            killed_at = time.monotonic()
            promoted = await asyncio.to_thread(redis_cluster.wait_for_failover, killed, 30.0)
            failover_s = time.monotonic() - killed_at
            assert not await offsets.reached(ends), "the stream ended before the kill"

            # No offset committed ahead of its effects, on the promoted masters.
            assert await committed_ahead(world, offsets, produced) == []

            origin_back_s = await eventually(
                origin_serves, within=RECOVERY_BOUND_S, what="the origin served the bundle again"
            )
            stop_polling.set()
            await poller

            # The dead node comes back (as a replica of the promoted master).
            redis_cluster.restart(killed.node.port)
            back_at = time.monotonic()

            async def caught_up() -> bool:
                consumer.assert_running()
                return await offsets.reached(ends)

            await eventually(caught_up, within=RECOVERY_BOUND_S, what="the consumer caught up")
            caught_up_s = time.monotonic() - back_at

            async def drained() -> bool:
                consumer.assert_running()
                queued = await world.queued_tags("local-edge")
                if queued and time.monotonic() - back_at > RECOVERY_BOUND_S + 25:
                    raise AssertionError(f"{len(queued)} tags still queued:\n{consumer.tail()}")
                return queued == {}

            await eventually(drained, within=30, what="the purge queue drained")
        assert consumer.terminate() == 0, consumer.tail()

        # Nothing lost, nothing applied twice, every changed bundle purged.
        want = expected_product_fields(world.products, events)
        assert state_differences(await world.product_fields(), want) == []
        for sku in {e.sku for e in events}:
            seen = [as_text(s) for s in await redis.lrange(keys.event_seen_key(sku), 0, -1)]
            mine = sorted(e.event_id for e in events if e.sku == sku)
            assert sorted(seen) == mine, f"{sku}: applied ids {sorted(seen)} != {mine}"
        assert await world.consistency_problems() == []
        hashes_after = await world.content_hashes()
    finally:
        stop_polling.set()
        consumer.terminate()
        await redis.aclose()

    # The origin never hung, and said "retry" when it could not answer.
    assert answers, "the origin was not asked during the failover"
    slow = [a for a in answers if a.seconds >= REQUEST_BOUND_S]
    assert slow == [], slow[:5]
    refused = [a for a in answers if a.status not in (200, 404)]
    not_retry = [a for a in refused if (a.status, a.retry_after) != (503, "1")]
    assert not_retry == [], not_retry[:5]
    assert refused, "no request met the failover (the victim served the hero bundle's slot)"

    changed = {k for k in hashes_after if hashes_after[k] != hashes_before[k]}
    assert changed
    changed_tags = {bundle_tag(FragmentKey.from_cache_key(k)) for k in changed}
    assert changed_tags <= fake_purge_api.accepted_tags("local-edge")
    print(
        f"failover: master {killed.node.port} -> {promoted.port} in {failover_s:.1f}s; "
        f"origin served again {origin_back_s:.1f}s after; {len(refused)} of {len(answers)} "
        f"requests got 503 (slowest {max(a.seconds for a in answers) * 1000:.0f} ms); consumer "
        f"caught up {caught_up_s:.1f}s after the node came back"
    )
