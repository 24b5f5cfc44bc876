"""kill -9 of the `shelfedge consume` process mid-stream: restart, and nothing is lost.

The real CLI (`python -m shelfedge consume`) runs as a subprocess against the session Redis, a
broker of the test's own and the fake purge API (as the local edge). It is SIGKILLed while a
window is in flight (events applied, offsets not yet committed), started again, and must then
reach the log end with: every SKU in its last-version-wins state, each event applied exactly
once (the redelivered ones counted as duplicates or stale), every list and bundle equal to a
fresh recompute, and every changed bundle purged.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from invalidation.demo_events import DemoEventStream
from invalidation.events import Event, InventoryEvent, topic_of
from origin.core import keys
from origin.core.redis_text import as_text
from shelfedge.localstack import free_port
from tests.invalidation.consume_process import ConsumeProcess, scrape
from tests.invalidation.support import (
    GroupOffsets,
    Produced,
    World,
    eventually,
    expected_product_fields,
    log_ends,
    produce,
    state_differences,
)
from tests.support.fake_purge_api import FakePurgeApi
from tests.support.kafka_engines import Broker

EVENTS = 3000
KILL_ATTEMPTS = 3


def is_applied(fields: dict[str, str], event: Event) -> bool:
    if isinstance(event, InventoryEvent):
        return int(fields.get("ver:" + event.location, "0")) >= event.version
    return int(fields.get("price_version", "0")) >= event.version


async def in_flight(
    world: World, offsets: GroupOffsets, produced: list[Produced]
) -> list[Produced]:
    """Events already applied in Redis at or beyond the committed offset of their partition."""
    committed = await offsets.committed()
    state = await world.product_fields()
    return [
        p
        for p in produced
        if p.offset >= committed[TopicPartition(topic_of(p.event), p.partition)]
        and is_applied(state[p.event.sku], p.event)
    ]


@pytest.mark.timeout(240)
async def test_kill_9_mid_stream_then_restart_loses_nothing(
    world: World,
    redis_url: str,
    fresh_kafka_broker: Broker,
    fake_purge_api: FakePurgeApi,
    processes: list[ConsumeProcess],
    tmp_path: Path,
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = f"kill9-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SHELFEDGE_CONSUMER_GROUP": group_id,
        "SHELFEDGE_PURGERS": "local-edge",
        "SHELFEDGE_LOCAL_EDGE_URL": fake_purge_api.url,
        "SHELFEDGE_CONSUMER_METRICS_PORT": "0",
        "SHELFEDGE_MAX_IN_FLIGHT": "100",
        "SHELFEDGE_COALESCE_MS": "20",
    }
    hashes_before = await world.content_hashes()
    stream = DemoEventStream(world.products, seed=21, id_prefix="k9")
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())
    assert any(e.available == 0 for e in events if isinstance(e, InventoryEvent))
    assert any(not isinstance(e, InventoryEvent) for e in events)
    produced = await produce(bootstrap, events)
    ends = log_ends(produced)
    log = tmp_path / "consume.log"

    async with GroupOffsets(bootstrap, group_id) as offsets:
        # Kill while a window is in flight: applied in Redis, offsets not committed yet.
        redelivered: list[Produced] = []
        for _attempt in range(KILL_ATTEMPTS):
            victim = ConsumeProcess(env, log)
            processes.append(victim)

            async def window_in_flight(victim: ConsumeProcess = victim) -> bool:
                victim.assert_running()
                return bool(await in_flight(world, offsets, produced))

            await eventually(window_in_flight, within=60, what="a window was in flight")
            victim.kill9()
            redelivered = await in_flight(world, offsets, produced)
            if redelivered:
                break
        assert redelivered, f"no kill landed inside a window in {KILL_ATTEMPTS} attempts"
        assert not await offsets.reached(ends), "the stream was already consumed"

        metrics_port = free_port()
        survivor_env = {**env, "SHELFEDGE_CONSUMER_METRICS_PORT": str(metrics_port)}
        survivor = ConsumeProcess(survivor_env, log)
        processes.append(survivor)

        async def caught_up() -> bool:
            survivor.assert_running()
            return await offsets.reached(ends)

        took = await eventually(caught_up, within=120, what="the restarted group reached the end")

        async def drained() -> bool:
            return await world.queued_tags("local-edge") == {}

        await eventually(drained, within=30, what="the purge queue drained")
        metrics = await scrape(metrics_port)
    assert survivor.terminate() == 0, survivor.tail()

    # Every SKU in its last-version-wins state.
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    # Each event applied exactly once: its id is remembered once, and the redelivered window
    # was recognised (duplicates or stale) instead of being applied again.
    for sku in {e.sku for e in events}:
        seen = [as_text(s) for s in await world.redis.lrange(keys.event_seen_key(sku), 0, -1)]
        mine = sorted(e.event_id for e in events if e.sku == sku)
        assert sorted(seen) == mine, f"{sku}: applied ids {sorted(seen)} != {mine}"
    recognised = (
        metrics['shelfedge_events_total{outcome="duplicate",topic="all"}']
        + metrics['shelfedge_events_total{outcome="stale",topic="all"}']
    )
    assert recognised >= len(redelivered)
    # Lists and bundles equal a fresh recompute; every changed bundle was purged.
    assert await world.consistency_problems() == []
    hashes_after = await world.content_hashes()
    changed = {k for k in hashes_after if hashes_after[k] != hashes_before[k]}
    assert changed
    changed_tags = {bundle_tag(FragmentKey.from_cache_key(k)) for k in changed}
    assert changed_tags <= fake_purge_api.accepted_tags("local-edge")
    print(f"kill -9: {len(redelivered)} events in flight at the kill; caught up in {took:.1f}s")
