"""Two `shelfedge consume` processes in one group against Apache Kafka: the partitions split,
one stops mid-stream and the other takes over without losing anything, and the CDN purge budget
holds across both (one drainer per purger, elected through the Redis lease).

The SKU topics are grown to 12 partitions each (``inventory.v1`` and ``price.v1``; the fresh
broker recreates them after the test). Both processes run the real CLI with a `local-edge` and a
`cloudflare` purger pointed at the fake purge API, the Cloudflare one with a small request
bucket: the requests the fake received must fit that one bucket, whichever process sent them.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import KafkaError

from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from fragments.topics import CATALOG, INVENTORY, LISTS, PRICE
from invalidation.demo_events import DemoEventStream
from invalidation.events import Event
from origin.core import keys
from origin.core.redis_text import as_text
from shelfedge.localstack import free_port
from tests.invalidation.consume_process import ConsumeProcess, scrape
from tests.invalidation.support import (
    GroupOffsets,
    World,
    eventually,
    expected_product_fields,
    log_ends,
    produce,
    state_differences,
)
from tests.support.fake_purge_api import DEFAULT_CLOUDFLARE_TOKEN, DEFAULT_ZONE_ID, FakePurgeApi
from tests.support.kafka_engines import APACHE_KAFKA, Broker

EVENTS = 3000
PARTITIONS = 12
CF_RATE = 0.25
CF_BUCKET = 1
APPLIED = 'shelfedge_events_total{outcome="applied",topic="all"}'
DEFERRED = 'shelfedge_purge_deferred_total{purger="cloudflare"}'


async def grow_sku_topics(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_partitions(
            {t.name: NewPartitions(PARTITIONS) for t in (INVENTORY, PRICE)}
        )
    finally:
        await admin.close()


async def assignments(bootstrap: str, group_id: str) -> list[set[TopicPartition]]:
    """The partitions each member of the group owns now (from the group coordinator)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
    except KafkaError as exc:
        if exc.retriable:  # the coordinator is still loading: not yet
            return []
        raise
    finally:
        await admin.close()
    owned: list[set[TopicPartition]] = []
    for group in response.groups:
        if group[2] != "Stable":  # (error, group, state, protocol type, protocol, members...)
            return []
        for member in group[5]:
            decoded = ConsumerProtocolMemberAssignment.decode(member[-1])
            owned.append({TopicPartition(t, p) for t, parts in decoded.assignment for p in parts})
    return owned


def fits_one_bucket(times: list[float], rate: float, capacity: int, slack: float) -> bool:
    """Whether requests at `times` never outran one token bucket (plus `slack` tokens for
    clock skew between the fake's reading and the sender's spending)."""
    times = sorted(times)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            if j - i + 1 > capacity + rate * (times[j] - start) + slack:
                return False
    return True


@pytest.mark.timeout(300)
@pytest.mark.parametrize("_fresh_broker_node", [APACHE_KAFKA], indirect=True)
async def test_two_processes_split_hand_over_and_share_one_purge_budget(
    world: World,
    redis_url: str,
    fresh_kafka_broker: Broker,
    fake_purge_api: FakePurgeApi,
    processes: list[ConsumeProcess],
    tmp_path: Path,
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    await grow_sku_topics(bootstrap)
    group_id = f"group-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SHELFEDGE_CONSUMER_GROUP": group_id,
        "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "SHELFEDGE_PURGERS": "local-edge,cloudflare",
        "SHELFEDGE_LOCAL_EDGE_URL": fake_purge_api.url,
        "SHELFEDGE_CLOUDFLARE_ZONE_ID": DEFAULT_ZONE_ID,
        "SHELFEDGE_CLOUDFLARE_API_TOKEN": DEFAULT_CLOUDFLARE_TOKEN,
        "SHELFEDGE_CLOUDFLARE_API_BASE": fake_purge_api.cloudflare_api_base,
        "SHELFEDGE_CLOUDFLARE_RATE": str(CF_RATE),
        "SHELFEDGE_CLOUDFLARE_BUCKET": str(CF_BUCKET),
        "SHELFEDGE_MAX_IN_FLIGHT": "150",
        "SHELFEDGE_COALESCE_MS": "20",
    }
    ports = [free_port(), free_port()]
    log = tmp_path / "consume.log"
    a, b = (
        ConsumeProcess({**env, "SHELFEDGE_CONSUMER_METRICS_PORT": str(port)}, log) for port in ports
    )
    processes.extend([a, b])
    every = {TopicPartition(t.name, p) for t in (INVENTORY, PRICE) for p in range(PARTITIONS)}
    every |= {TopicPartition(t.name, p) for t in (CATALOG, LISTS) for p in range(t.partitions)}

    split: list[set[TopicPartition]] = []

    async def partitions_split() -> bool:
        a.assert_running()
        b.assert_running()
        split[:] = await assignments(bootstrap, group_id)
        return (
            len(split) == 2
            and all(split)
            and not split[0] & split[1]
            and split[0] | split[1] == every
        )

    await eventually(partitions_split, within=90, what="two members splitting every partition")
    assert all(len(owned & every) >= PARTITIONS - 3 for owned in split), split

    hashes_before = await world.content_hashes()
    stream = DemoEventStream(world.products, seed=12, id_prefix="grp")
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())
    produced = await produce(bootstrap, events)
    ends = log_ends(produced)
    assert len({tp for tp in ends if tp.topic == INVENTORY.name}) > 6, "the new partitions"

    async with GroupOffsets(bootstrap, group_id) as offsets:

        async def both_working() -> bool:
            return all([(await scrape(port)).get(APPLIED, 0) > 0 for port in ports])

        await eventually(both_working, within=60, what="both processes applied events")
        # Either process may hold the drain lease (and so meet the bucket) until b leaves.
        deferred_by_b = (await scrape(ports[1])).get(DEFERRED, 0)
        assert b.terminate() == 0, b.tail()  # a clean leave: its window committed first
        assert not await offsets.reached(ends), "the stream was consumed before b left"

        async def caught_up() -> bool:
            a.assert_running()
            return await offsets.reached(ends)

        took = await eventually(caught_up, within=150, what="the remaining process caught up")

        async def drained() -> bool:
            return all([await world.queued_tags(p) == {} for p in ("local-edge", "cloudflare")])

        await eventually(drained, within=60, what="the purge queues drained")
        deferred = deferred_by_b + (await scrape(ports[0])).get(DEFERRED, 0)
    assert a.terminate() == 0, a.tail()

    # Nothing lost, nothing applied twice.
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    for sku in {e.sku for e in events}:
        seen = [as_text(s) for s in await world.redis.lrange(keys.event_seen_key(sku), 0, -1)]
        assert sorted(seen) == sorted(e.event_id for e in events if e.sku == sku), sku
    assert await world.consistency_problems() == []
    # Every changed bundle purged through both purgers.
    hashes_after = await world.content_hashes()
    changed = {
        bundle_tag(FragmentKey.from_cache_key(k))
        for k in hashes_after
        if hashes_after[k] != hashes_before[k]
    }
    assert changed
    assert changed <= fake_purge_api.accepted_tags("local-edge")
    assert changed <= fake_purge_api.accepted_tags("cloudflare")
    # One Cloudflare budget for the group, not one per process.
    sent = [c.at for c in fake_purge_api.calls("cloudflare")]
    assert len(sent) > CF_BUCKET  # more than one burst: the bucket had to refill
    # Demand outran the bucket (without one budget it would show): the same windows' tags took
    # the unlimited local edge more requests, so Cloudflare's waited and merged. (The deferral
    # count alone can miss it: b's last deferrals may come after its final scrape.)
    unlimited = len(fake_purge_api.calls("local-edge"))
    assert unlimited > len(sent), (unlimited, len(sent), deferred)
    assert fits_one_bucket(sent, CF_RATE, CF_BUCKET, slack=1.0), sorted(sent)
    print(
        f"group of 2: {len(events)} events over {len(ends)} partitions, caught up {took:.1f}s"
        f" after b left; {len(sent)} Cloudflare requests within one bucket ({deferred:.0f}"
        f" rounds deferred by it, both processes; {unlimited} local-edge requests)"
    )
