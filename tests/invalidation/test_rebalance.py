"""Two consumers in one group split the partitions; one stops mid-stream, the other takes over.

Both run in this process (each its own aiokafka client and pipeline) against a broker of the
test's own and the session Redis. The final state must be complete: every event applied, every
list and bundle equal to a fresh recompute, the group committed to the end of every partition.
"""

from __future__ import annotations

import uuid

from invalidation.demo_events import DemoEventStream
from invalidation.events import Event
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
from tests.support.kafka_engines import Broker

EVENTS = 3000


async def test_a_member_leaving_mid_stream_hands_over_without_loss(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = f"rebalance-{uuid.uuid4().hex[:10]}"
    stream = DemoEventStream(world.products, seed=33, id_prefix="rb")
    events: list[Event] = []
    while len(events) < EVENTS:
        events.extend(stream.next_change())

    async with (
        running_consumer(
            consumer_config(bootstrap, group_id, client_id="member-a", max_in_flight=100),
            world.pipeline(),
        ) as a,
        GroupOffsets(bootstrap, group_id) as offsets,
    ):
        async with running_consumer(
            consumer_config(bootstrap, group_id, client_id="member-b", max_in_flight=100),
            world.pipeline(),
        ) as b:

            async def split() -> bool:
                mine, theirs = a.consumer.consumer.assignment(), b.consumer.consumer.assignment()
                return bool(mine) and bool(theirs) and not mine & theirs

            await eventually(split, within=30, what="both members own partitions")
            b_partitions = set(b.consumer.consumer.assignment())
            produced = await produce(bootstrap, events)
            ends = log_ends(produced)

            async def b_worked() -> bool:
                return any(r.applied for r in b.reports)

            await eventually(b_worked, within=30, what="member b processed a window")
        # b has stopped (its current window completed and committed) and left the group.
        assert not await offsets.reached(ends), "b finished its share before it was stopped"
        b_processed = b.count("consumed")

        async def a_took_over() -> bool:
            return bool(b_partitions <= a.consumer.consumer.assignment())

        await eventually(a_took_over, within=30, what="member a owns b's partitions")
        await eventually(
            lambda: offsets.reached(ends), within=90, what="the group reached the log end"
        )

    assert 0 < b_processed < len(events)
    applied = a.count("applied") + b.count("applied")
    assert applied == len(events), "each event applied exactly once across both members"
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    assert await world.consistency_problems() == []
