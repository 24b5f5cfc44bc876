"""The broker itself dies mid-stream (SIGKILL) and comes back on its durable log.

Apache Kafka only: Tansu's memory storage loses the log on a restart, so there the question
"was anything lost?" has no meaning. The consumer runs in this process against the session's
Apache Kafka node; half the events are produced, the broker is killed while windows are being
applied and committed, restarted on the same ports and data dir, and the second half is
produced. Afterwards:

- nothing is lost: the log holds every record at the coordinates its producer was given;
- the group resumed from its committed offsets (it did not start over from 0): it consumed
  at most the events plus what was fetched but uncommitted when the broker died;
- duplicates change nothing: every event applied exactly once, every SKU in its
  last-version-wins state, every list and bundle equal to a fresh recompute.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import pytest

from fragments.topics import INVENTORY, PRICE
from invalidation.demo_events import DemoEventStream
from invalidation.events import Event, topic_of
from invalidation.replay import read_range
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
from tests.support.kafka_engines import APACHE_KAFKA, Broker

EVENTS = 4000
MAX_IN_FLIGHT = 150


def demo_events(world: World) -> list[Event]:
    stream = DemoEventStream(world.products, seed=77, id_prefix="bf")
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())
    return events


@pytest.mark.timeout(240)
@pytest.mark.parametrize("_fresh_broker_node", [APACHE_KAFKA], indirect=True)
async def test_broker_kill_9_mid_stream_loses_nothing_and_resumes_from_commits(
    world: World, fresh_kafka_broker: Broker
) -> None:
    broker = fresh_kafka_broker
    bootstrap = broker.bootstrap
    group_id = f"broker-fault-{uuid.uuid4().hex[:10]}"
    events = demo_events(world)
    first, second = events[: EVENTS // 2], events[EVENTS // 2 :]

    config = consumer_config(bootstrap, group_id, max_in_flight=MAX_IN_FLIGHT, window_ms=20)
    async with running_consumer(config, world.pipeline()) as run:
        produced = await produce(bootstrap, first)
        first_ends = log_ends(produced)
        async with GroupOffsets(bootstrap, group_id) as offsets:

            async def partway() -> bool:
                committed = sum((await offsets.committed(first_ends)).values())
                return 0 < committed < sum(first_ends.values()) // 2

            await eventually(partway, within=60, what="the group committed part of the stream")
            committed_at_kill = await offsets.committed(first_ends)
        consumed_at_kill = run.count("consumed")

        broker.kill()
        assert broker.returncode == -signal.SIGKILL
        down_since = time.monotonic()
        # Same ports, same data dir: Kafka recovers its log. Started off the event loop, so
        # the consumer's own timers (Redis call deadlines) are not stalled for seconds.
        await asyncio.to_thread(broker.start)
        restarted_in = time.monotonic() - down_since

        produced += await produce(bootstrap, second)
        ends = log_ends(produced)
        async with GroupOffsets(bootstrap, group_id) as offsets:
            after_restart = await offsets.committed(first_ends)
            assert all(after_restart[tp] >= committed_at_kill[tp] for tp in first_ends), (
                f"commits went backwards over the restart: {committed_at_kill} -> {after_restart}"
            )
            took = await eventually(
                lambda: offsets.reached(ends), within=120, what="the group reached the log end"
            )
        task_error = run.task.exception() if run.task.done() else None
        assert task_error is None, f"the consumer loop died: {task_error!r}"

    # Nothing lost: the log holds every record where its producer was told it went.
    records = await read_range(bootstrap, [INVENTORY.name, PRICE.name], from_offset=0)
    assert sorted((r.topic, r.partition, r.offset) for r in records) == sorted(
        (topic_of(p.event), p.partition, p.offset) for p in produced
    )
    # Resumed from committed offsets: what was read twice is bounded by what was in flight.
    consumed = run.count("consumed")
    assert consumed >= len(events)
    assert consumed - len(events) <= MAX_IN_FLIGHT, (
        f"{consumed} records consumed for {len(events)} events: the group started over"
    )
    assert consumed_at_kill < len(events)
    # Duplicates change nothing.
    assert run.count("applied") == len(events), "each event applied exactly once"
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    assert await world.consistency_problems() == []
    print(
        f"broker kill -9: restarted in {restarted_in:.1f}s, group at the end {took:.1f}s later, "
        f"{consumed - len(events)} records read twice"
    )
