"""The consumer's lag gauge (`InvalidationConsumer.report_lag`) tells the truth under a backlog
and after a rebalance, on a real broker.

A member behind a backlog (one-record windows) must report the records produced meanwhile
within a couple of refreshes, although it fetches nothing new while its buffer is full; and a
member that loses partitions to a new member stops reporting their lag (their new owner does).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from invalidation.consumer import LAG_REFRESH_S
from invalidation.events import PriceEvent, encode_event, topic_of
from shelfedge.localstack import KafkaBroker
from tests.invalidation.support import (
    WHEN,
    World,
    consumer_config,
    eventually,
    produce,
    running_consumer,
)

pytestmark = pytest.mark.slow


def _lags(registry: CollectorRegistry) -> dict[str, float]:
    """The member's ``shelfedge_consumer_lag`` samples by partition label."""
    return {
        s.labels["partition"]: s.value
        for family in registry.collect()
        if family.name == "shelfedge_consumer_lag"
        for s in family.samples
    }


async def produce_one_by_one(bootstrap: str, events: list[PriceEvent]) -> None:
    """Each event in its own batch (Tansu 0.6 reports a log end of the last batch's base
    offset + 1, so a large batch would hide most of itself from any lag reading)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(topic_of(e), encode_event(e), key=e.sku.encode())
    finally:
        await producer.stop()


def _events(world: World, prefix: str, count: int) -> list[PriceEvent]:
    base = time.time_ns() // 1000
    skus = [p.sku for p in world.products]
    return [
        PriceEvent(f"{prefix}-{n}", skus[n % len(skus)], 1000 + n, "USD", base + n, WHEN)
        for n in range(count)
    ]


async def test_a_member_behind_a_backlog_reports_what_arrives_meanwhile(
    world: World, fresh_kafka_broker: KafkaBroker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group = f"lag-{uuid.uuid4().hex[:6]}"
    slow = consumer_config(bootstrap, group, max_in_flight=3)
    async with running_consumer(slow, world.pipeline(purgers=())) as run:
        registry = run.consumer.metrics.registry
        await produce(bootstrap, _events(world, "first", 600))

        async def reported() -> bool:
            return sum(_lags(registry).values()) > 0

        await eventually(reported, within=30, what="the member reports some lag")
        before = sum(_lags(registry).values())
        await produce_one_by_one(bootstrap, _events(world, "more", 2000))
        consumed_before = run.count("consumed")

        async def grown() -> bool:
            return sum(_lags(registry).values()) >= before + 1500

        took = await eventually(
            grown, within=4 * LAG_REFRESH_S + 2, what="the lag to show the new records"
        )
        assert run.count("consumed") - consumed_before < 1000, "the member stayed behind"

        # A second member joins: the first gives up partitions and stops reporting them.
        fast = consumer_config(bootstrap, group, client_id="lag-second")
        async with running_consumer(fast, world.pipeline(purgers=())) as second:

            async def shared() -> bool:
                mine = run.consumer.consumer.assignment()
                theirs = second.consumer.consumer.assignment()
                return bool(mine) and bool(theirs)

            await eventually(shared, within=30, what="the group to share the partitions")
            await asyncio.sleep(2 * LAG_REFRESH_S)
            owned = {f"{tp.topic}:{tp.partition}" for tp in run.consumer.consumer.assignment()}
            reported_now = set(_lags(registry))
            assert reported_now <= owned, sorted(reported_now - owned)
    print(f"the lag showed 2000 new records {took:.1f} s after they were produced")
