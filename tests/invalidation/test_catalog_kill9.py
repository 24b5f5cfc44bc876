"""kill -9 of `shelfedge consume` while catalog.v1 events are in flight: restart, nothing lost.

The pattern of test_kill9 with content events: titles change per SKU in version order (some
events delivered twice by the producer). The consumer is SIGKILLed while a window is applied but
not committed, restarted, and must reach the log end with every SKU showing its last version's
title, each event id applied once, lists and bundles equal to a fresh recompute, and every
changed bundle purged.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from invalidation.events import CatalogEvent, Event, topic_of
from origin.core import keys
from origin.core.redis_text import as_text
from shelfedge.localstack import KafkaBroker
from tests.invalidation.consume_process import ConsumeProcess
from tests.invalidation.support import (
    WHEN,
    GroupOffsets,
    Produced,
    World,
    eventually,
    log_ends,
    produce,
)
from tests.invalidation.test_kill9 import KILL_ATTEMPTS
from tests.support.fake_purge_api import FakePurgeApi

SKUS = 120
VERSIONS = 12


def title(sku: str, version: int) -> str:
    return f"{sku} edition {version}"


async def in_flight(world: World, offsets: GroupOffsets, produced: list[Produced]) -> bool:
    committed = await offsets.committed()
    state = await world.product_fields()
    return any(
        p.offset >= committed[TopicPartition(topic_of(p.event), p.partition)]
        and int(state[p.event.sku].get("content_version", "0")) >= p.event.version
        for p in produced
    )


@pytest.mark.timeout(240)
async def test_kill_9_with_content_events_in_flight_loses_nothing(
    world: World,
    redis_url: str,
    fresh_kafka_broker: KafkaBroker,
    fake_purge_api: FakePurgeApi,
    processes: list[ConsumeProcess],
    tmp_path: Path,
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = f"kill9-catalog-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SHELFEDGE_CONSUMER_GROUP": group_id,
        "SHELFEDGE_PURGERS": "local-edge",
        "SHELFEDGE_LOCAL_EDGE_URL": fake_purge_api.url,
        "SHELFEDGE_CONSUMER_METRICS_PORT": "0",
        "SHELFEDGE_MAX_IN_FLIGHT": "60",
        "SHELFEDGE_COALESCE_MS": "20",
    }
    hashes_before = await world.content_hashes()
    skus = [p.sku for p in world.products[:SKUS]]
    events: list[Event] = []
    for version in range(1, VERSIONS + 1):
        for sku in skus:
            event = CatalogEvent(f"{sku}-v{version}", sku, version, WHEN, title=title(sku, version))
            events.append(event)
            if version % 5 == 0:
                events.append(event)  # the producer retried: a duplicate
    produced = await produce(bootstrap, events)
    ends = log_ends(produced)
    log = tmp_path / "consume.log"
    async with GroupOffsets(bootstrap, group_id) as offsets:
        killed_in_flight = False
        for _attempt in range(KILL_ATTEMPTS):
            victim = ConsumeProcess(env, log)
            processes.append(victim)

            async def window_in_flight(victim: ConsumeProcess = victim) -> bool:
                victim.assert_running()
                return await in_flight(world, offsets, produced)

            await eventually(window_in_flight, within=60, what="a window was in flight")
            victim.kill9()
            if await in_flight(world, offsets, produced):
                killed_in_flight = True
                break
        assert killed_in_flight, f"no kill landed inside a window in {KILL_ATTEMPTS} attempts"
        assert not await offsets.reached(ends), "the stream was already consumed"
        survivor = ConsumeProcess(env, log)
        processes.append(survivor)

        async def caught_up() -> bool:
            survivor.assert_running()
            return await offsets.reached(ends)

        await eventually(caught_up, within=120, what="the restarted group reached the end")

        async def drained() -> bool:
            return await world.queued_tags("local-edge") == {}

        await eventually(drained, within=30, what="the purge queue drained")
    assert survivor.terminate() == 0, survivor.tail()
    state = await world.product_fields()
    for sku in skus:
        assert state[sku]["title"] == title(sku, VERSIONS)
        assert state[sku]["content_version"] == str(VERSIONS)
        seen = [as_text(s) for s in await world.redis.lrange(keys.event_seen_key(sku), 0, -1)]
        assert sorted(seen) == sorted(f"{sku}-v{v}" for v in range(1, VERSIONS + 1))
    assert await world.consistency_problems() == []
    hashes_after = await world.content_hashes()
    changed = {k for k in hashes_after if hashes_after[k] != hashes_before[k]}
    assert changed
    changed_tags = {bundle_tag(FragmentKey.from_cache_key(k)) for k in changed}
    assert changed_tags <= fake_purge_api.accepted_tags("local-edge")
