"""`InvalidationConsumer` against a real broker (a Tansu broker of each test's own) and Redis.

Events produced -> consumed -> applied, bundles updated, offsets committed only after the
effects; bad records go to the dead-letter topic without blocking their partition; a Redis
outage commits nothing and loses nothing; kcat (librdkafka) as an independent producer.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import TopicPartition

from fragments import topics
from invalidation.consumer import ConsumerConfig, InvalidationConsumer, next_offsets_of
from invalidation.demo_events import DemoEventStream, EventMix
from invalidation.events import Event, InventoryEvent, PriceEvent, encode_event
from invalidation.pipeline import AppliedBatch, BatchReport, InvalidationPipeline
from invalidation.records import DecodedRecords, Record
from origin.core.redis_client import redis_client
from origin.errors import StoreUnavailable
from shelfedge.localstack import RedisServer
from tests.invalidation.support import (
    WHEN,
    GroupOffsets,
    Produced,
    World,
    consumer_config,
    eventually,
    expected_product_fields,
    log_ends,
    produce,
    produce_raw,
    read_topic,
    running_consumer,
    seed_world,
    state_differences,
)
from tests.support.kafka_engines import Broker


def group() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def demo_events(world: World, count: int, seed: int = 1) -> list[Event]:
    stream = DemoEventStream(
        world.products,
        seed=seed,
        hot_skus=60,
        mix=EventMix(price=0.1, promo=0.03, sell_out=0.05, restock=0.05),
        id_prefix=f"t{seed}",
    )
    events: list[Event] = []
    while len(events) < count:
        events.extend(stream.next_change())
    return events


def is_applied(fields: dict[str, str], produced: Produced) -> bool:
    event = produced.event
    if isinstance(event, InventoryEvent):
        return int(fields.get("ver:" + event.location, "0")) >= event.version
    return int(fields.get("price_version", "0")) >= event.version


async def test_consumed_events_update_state_and_commits_follow_effects(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = group()
    events = demo_events(world, 800)
    violations: list[str] = []
    partial_samples = 0

    async def sample_commits(offsets: GroupOffsets, produced: list[Produced]) -> None:
        """Committed offset covers an event => its effect is already in Redis."""
        nonlocal partial_samples
        while True:
            committed = await offsets.committed()
            state = await world.product_fields()
            covered = [
                p for p in produced if p.offset < committed[TopicPartition(_topic(p), p.partition)]
            ]
            violations.extend(
                f"{p.event.event_id} committed at {_topic(p)}[{p.partition}]@{p.offset} "
                "before it was applied"
                for p in covered
                if not is_applied(state[p.event.sku], p)
            )
            if 0 < len(covered) < len(produced):
                partial_samples += 1
            if len(covered) == len(produced):
                return
            await asyncio.sleep(0.01)

    config = consumer_config(bootstrap, group_id, max_in_flight=100)
    async with running_consumer(config, world.pipeline()) as run:
        produced = await produce(bootstrap, events)
        async with GroupOffsets(bootstrap, group_id) as offsets:
            await asyncio.wait_for(sample_commits(offsets, produced), timeout=90)
            assert await offsets.reached(log_ends(produced))
        counts = {o: run.count(o) for o in ("consumed", "applied", "dead_letter")}

    assert violations == []
    assert partial_samples > 0, "the sampler never saw a partly committed stream"
    assert counts == {"consumed": len(events), "applied": len(events), "dead_letter": 0}
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    assert await world.consistency_problems() == []


def _topic(p: Produced) -> str:
    return topics.INVENTORY.name if isinstance(p.event, InventoryEvent) else topics.PRICE.name


async def test_bad_records_are_dead_lettered_and_do_not_block_the_partition(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = group()
    sku = world.products[0].sku
    key = sku.encode()
    inventory = topics.INVENTORY.name
    oversized = json.dumps(
        {
            "event_id": "big",
            "sku": sku,
            "location": "store-001",
            "available": 1,
            "version": 1,
            "occurred_at": WHEN.isoformat(),
            "padding": "x" * 20_000,
        }
    ).encode()
    violating = json.dumps({"event_id": "v", "sku": sku, "location": "store-001"}).encode()
    bad = [
        (b"{this is not json", "not JSON"),
        (oversized, "oversized event"),
        (violating, "schema violation"),
    ]
    coordinates = [await produce_raw(bootstrap, inventory, value, key) for value, _ in bad]
    valid = InventoryEvent("good-1", sku, "store-001", 0, 5, WHEN)
    [last] = await produce(bootstrap, [valid])
    partition = {p for p, _ in coordinates}
    assert partition == {last.partition}, "same key, same partition"

    ends = {TopicPartition(inventory, last.partition): last.offset + 1}
    async with (
        running_consumer(consumer_config(bootstrap, group_id), world.pipeline()),
        GroupOffsets(bootstrap, group_id) as offsets,
    ):
        await eventually(
            lambda: offsets.reached(ends), within=30, what="the group committed every record"
        )

    product = await world.store.product(sku)
    assert product is not None
    assert (product.locations["store-001"], product.stock_version) == (0, 5)
    dead = await read_topic(
        bootstrap, topics.DEAD_LETTER.name, topics.DEAD_LETTER.partitions, expect=len(bad)
    )
    assert len(dead) == len(bad)
    for record, (value, reason), (part, offset) in zip(dead, bad, coordinates, strict=True):
        assert record.value == value
        assert record.key == key
        headers = dict(record.headers)
        assert headers["shelfedge.source.topic"] == inventory.encode()
        assert headers["shelfedge.source.partition"] == str(part).encode()
        assert headers["shelfedge.source.offset"] == str(offset).encode()
        assert reason in headers["shelfedge.error.reason"].decode()


async def test_unknown_skus_are_dead_lettered_with_their_name(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = group()
    stray = PriceEvent("stray", "GHOST-1", 100, "USD", 1, WHEN)
    ends = log_ends(await produce(bootstrap, [stray]))
    async with (
        running_consumer(consumer_config(bootstrap, group_id), world.pipeline()),
        GroupOffsets(bootstrap, group_id) as offsets,
    ):
        await eventually(
            lambda: offsets.reached(ends), within=30, what="the group committed the record"
        )
    [dead] = await read_topic(
        bootstrap, topics.DEAD_LETTER.name, topics.DEAD_LETTER.partitions, expect=1
    )
    assert dead.value == encode_event(stray)
    reason = dict(dead.headers)["shelfedge.error.reason"]
    assert b"unknown sku 'GHOST-1'" in reason


async def run_until_the_loop_dies(config: ConsumerConfig, pipeline: InvalidationPipeline) -> None:
    async with running_consumer(config, pipeline) as run:
        done, _ = await asyncio.wait([run.task], timeout=30)
        assert done, "the consumer kept running without its store"


async def test_a_redis_outage_commits_nothing_and_loses_nothing(
    fresh_redis_server: RedisServer, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = group()
    # The product's client (one immediate retry on a dropped connection): pooled connections
    # opened before the restart are dead after it, and the consumer's own client reconnects.
    redis = redis_client(fresh_redis_server.url, timeout_ms=5000, per_reply_timeout=False)
    try:
        world = await seed_world(redis)
        events = demo_events(world, 200, seed=3)
        fresh_redis_server.stop()
        ends = log_ends(await produce(bootstrap, events))
        config = consumer_config(bootstrap, group_id)
        with pytest.raises(StoreUnavailable, match="redis unavailable"):
            await run_until_the_loop_dies(config, world.pipeline())
        async with GroupOffsets(bootstrap, group_id) as offsets:
            assert set((await offsets.committed()).values()) == {0}, "committed without effects"

        fresh_redis_server.start()  # memory only: it comes back empty
        world = await seed_world(redis)
        async with (
            running_consumer(config, world.pipeline()),
            GroupOffsets(bootstrap, group_id) as offsets,
        ):
            await eventually(lambda: offsets.reached(ends), within=30, what="the group caught up")
        want = expected_product_fields(world.products, events)
        assert state_differences(await world.product_fields(), want) == []
        assert await world.consistency_problems() == []
    finally:
        await redis.aclose()


class StagedPipeline(InvalidationPipeline):
    """The product pipeline, slowed in propagation and noting when each stage of each window ran
    and what the group had committed when a window's propagation began."""

    def __init__(self, world: World, offsets: GroupOffsets) -> None:
        base = world.pipeline()
        super().__init__(base.applier, base.recomputer, base.purgers)
        self.offsets = offsets
        self.log: list[tuple[str, int]] = []
        self.windows: list[dict[TopicPartition, int]] = []
        """Per window, in apply order: the next offset to commit after it."""
        self.problems: list[str] = []

    async def apply_events(self, batch: DecodedRecords) -> AppliedBatch:
        self.windows.append(next_offsets_of(batch.records))
        window = len(self.windows) - 1
        self.log.append(("apply", window))
        applied = await super().apply_events(batch)
        self.log.append(("applied", window))
        return applied

    async def propagate(self, applied: AppliedBatch) -> BatchReport:
        ends = next_offsets_of(applied.batch.records)
        window = self.windows.index(ends)
        self.log.append(("propagate", window))
        committed = await self.offsets.committed(ends)
        if any(committed[tp] >= end for tp, end in ends.items()):
            self.problems.append(f"window {window} committed before it propagated: {committed}")
        for earlier in self.windows[:window]:
            done = await self.offsets.committed(earlier)
            if any(done[tp] < end for tp, end in earlier.items() if tp not in ends):
                self.problems.append(f"window {window} propagates before an earlier committed")
        await asyncio.sleep(0.05)  # long enough for the next window to be applied meanwhile
        report = await super().propagate(applied)
        self.log.append(("propagated", window))
        return report


async def test_the_next_window_applies_while_one_propagates_and_commits_stay_in_order(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = group()
    events = demo_events(world, 600, seed=5)
    config = consumer_config(bootstrap, group_id, max_in_flight=60)
    async with GroupOffsets(bootstrap, group_id) as offsets:
        pipeline = StagedPipeline(world, offsets)
        async with running_consumer(config, pipeline):
            ends = log_ends(await produce(bootstrap, events))
            await eventually(lambda: offsets.reached(ends), within=60, what="the group caught up")
    assert pipeline.problems == []
    propagated = [w for stage, w in pipeline.log if stage == "propagated"]
    assert propagated == sorted(propagated) == list(range(len(pipeline.windows)))
    in_propagation: int | None = None
    overlapped = 0
    for stage, window in pipeline.log:
        if stage == "propagate":
            assert in_propagation is None, f"window {window} began while {in_propagation} ran"
            in_propagation = window
        elif stage == "propagated":
            in_propagation = None
        elif stage == "applied" and in_propagation is not None:
            overlapped += 1  # an apply ended while a window propagated: they ran together
    assert overlapped > 0, f"no window applied while another propagated: {pipeline.log}"
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
    assert await world.consistency_problems() == []


async def test_records_fetched_but_not_committed_stay_within_max_in_flight(
    world: World, fresh_kafka_broker: Broker
) -> None:
    """Backpressure: the buffer and the two windows in the pipeline never hold more than
    `max_in_flight` records, even with a backlog waiting and a slow propagation."""
    bootstrap = fresh_kafka_broker.bootstrap
    group_id = group()
    ends = log_ends(await produce(bootstrap, demo_events(world, 900, seed=6)))
    config = consumer_config(bootstrap, group_id, max_in_flight=90)
    samples: list[int] = []

    async def sample(consumer: InvalidationConsumer) -> None:
        while True:
            samples.append(consumer.in_flight)
            await asyncio.sleep(0.002)

    async with GroupOffsets(bootstrap, group_id) as offsets:
        pipeline = StagedPipeline(world, offsets)
        async with running_consumer(config, pipeline) as run:
            sampler = asyncio.create_task(sample(run.consumer))
            try:
                await eventually(lambda: offsets.reached(ends), within=60, what="caught up")
            finally:
                sampler.cancel()
    assert max(samples) <= config.max_in_flight
    assert max(samples) > config.window_records, "never more than one window in flight"


def test_next_offsets_are_one_past_the_highest_record_per_partition() -> None:
    def record(topic: str, partition: int, offset: int) -> Record:
        return Record(topic, partition, offset, b"k", b"{}", 0)

    records = [
        record("inventory.v1", 0, 7),
        record("inventory.v1", 1, 3),
        record("inventory.v1", 0, 5),  # redelivered out of order: never moves the commit back
        record("price.v1", 0, 0),
        record("inventory.v1", 0, 9),
    ]
    assert next_offsets_of(records) == {
        TopicPartition("inventory.v1", 0): 10,
        TopicPartition("inventory.v1", 1): 4,
        TopicPartition("price.v1", 0): 1,
    }
    assert next_offsets_of([]) == {}


async def test_a_lone_change_is_not_held_for_the_whole_window(
    world: World, kafka_bootstrap: str
) -> None:
    """A quiet stream closes its window early: one event with a 3 s window is applied in well
    under the window, while a steady stream still fills windows (the quiet gap is several
    fetch waits long)."""
    config = consumer_config(kafka_bootstrap, group(), window_ms=3000, quiet_ms=100)
    assert config.quiet_seconds == 0.6, "never shorter than two fetch waits (300 ms)"
    [event] = demo_events(world, 1, seed=41)[:1]
    async with running_consumer(config, world.pipeline()) as run:

        async def assigned() -> bool:
            return bool(run.consumer.consumer.assignment())

        async def applied() -> bool:
            return run.count("applied") >= 1

        await eventually(assigned, within=30, what="an assignment")
        await produce(kafka_bootstrap, [event])
        took = await eventually(applied, within=30, what="the lone event applied")
    assert took < 2.5, f"the lone event waited {took:.2f} s: the full 3 s window"
