"""`invalidation.replay` against a real broker and Redis: re-running an applied range changes
nothing, a dry run writes nothing and predicts the outcomes, ranges start where asked.

Each test runs on Tansu and on Apache Kafka. Most produce one record per batch: Tansu 0.6
answers "latest offset" with the last batch's base offset + 1. `read_range` treats the reported
end as a lower bound and reads on until a poll comes back empty; the batched test below shows
that this is needed on Tansu and changes nothing on Apache Kafka, whose reported end is the
real high watermark.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fragments.topics import CATALOG, INVENTORY, PRICE
from invalidation.demo_events import DemoEventStream, EventMix
from invalidation.events import CatalogEvent, Event, encode_event, topic_of
from invalidation.replay import dry_run, read_range, replay
from origin.core import keys
from tests.invalidation.support import (
    WHEN,
    Produced,
    World,
    expected_product_fields,
    log_ends,
    produce,
    state_differences,
    take_snapshot,
)
from tests.support.kafka_engines import APACHE_KAFKA, Broker, engine_of

TOPICS = [INVENTORY.name, PRICE.name]
MIX = EventMix(price=0.15, promo=0.05, sell_out=0.05, restock=0.05)


async def produce_unbatched(bootstrap: str, events: list[Event]) -> list[Produced]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        out: list[Produced] = []
        for e in events:
            meta = await producer.send_and_wait(topic_of(e), encode_event(e), key=e.sku.encode())
            out.append(Produced(e, meta.partition, meta.offset))
        return out
    finally:
        await producer.stop()


def demo(world: World, count: int, seed: int, prefix: str, version_base: int = 1) -> list[Event]:
    stream = DemoEventStream(
        world.products,
        seed=seed,
        hot_skus=50,
        mix=MIX,
        id_prefix=prefix,
        version_base=version_base,
    )
    events: list[Event] = []
    while len(events) < count:
        events.extend(stream.next_change())
    return events


async def clear_purge_queues(world: World) -> None:
    await world.redis.delete(
        *[keys.purge_queue_key(p, "local-edge") for p in world.recomputer.partitions],
        *[keys.purge_generation_key(p, "local-edge") for p in world.recomputer.partitions],
    )


async def test_replaying_an_applied_range_changes_nothing(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    events = demo(world, 300, seed=5, prefix="r1")
    produced = await produce_unbatched(bootstrap, events)
    records = await read_range(bootstrap, TOPICS, from_offset=0)
    assert sorted((r.topic, r.partition, r.offset) for r in records) == sorted(
        (topic_of(p.event), p.partition, p.offset) for p in produced
    )
    pipeline = world.pipeline()
    first = await replay(pipeline, records)
    assert first.outcomes["applied"] == len(events)
    assert first.bundles_changed > 0
    await clear_purge_queues(world)
    before = await take_snapshot(world.redis)

    again = await replay(pipeline, await read_range(bootstrap, TOPICS, from_offset=0))
    assert again.outcomes["applied"] == 0
    assert again.outcomes["duplicate"] + again.outcomes["stale"] == len(events)
    assert (again.bundles_changed, again.purges_enqueued) == (0, 0)
    assert await world.queued_tags("local-edge") == {}
    assert await take_snapshot(world.redis) == before, "a replay of applied events wrote"
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []


async def test_dry_run_writes_nothing_and_predicts_the_replay(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    applied = demo(world, 200, seed=6, prefix="r2")
    await produce_unbatched(bootstrap, applied)
    await replay(world.pipeline(), await read_range(bootstrap, TOPICS, from_offset=0))
    await asyncio.sleep(0.01)  # a distinct millisecond for the next range's timestamps
    since = int(time.time() * 1000)
    fresh = demo(world, 200, seed=7, prefix="r3", version_base=1_000_000)
    await produce_unbatched(bootstrap, fresh)
    everything = await read_range(bootstrap, TOPICS, from_offset=0)
    assert len(everything) == len(applied) + len(fresh)
    before = await take_snapshot(world.redis)

    predicted = await dry_run(world.redis, everything)
    assert await take_snapshot(world.redis) == before, "a dry run wrote to Redis"
    assert predicted.records == len(everything)
    assert predicted.outcomes["duplicate"] == len(applied)
    assert predicted.outcomes["applied"] == len(fresh)
    assert predicted.bundles_changed == predicted.purges_enqueued == 0
    assert predicted.visible_skus
    assert "dry" not in predicted.summary()  # the CLI adds the wording; the report is data

    later = await read_range(bootstrap, TOPICS, from_timestamp_ms=since)
    assert sorted(r.value or b"" for r in later) == sorted(encode_event(e) for e in fresh)
    actual = await replay(world.pipeline(), everything)
    assert actual.outcomes == predicted.outcomes
    want = expected_product_fields(world.products, [*applied, *fresh])
    assert state_differences(await world.product_fields(), want) == []


async def test_a_range_starting_after_the_log_end_is_empty(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    await produce_unbatched(bootstrap, demo(world, 50, seed=8, prefix="r4"))
    future = int(time.time() * 1000) + 60_000
    assert await read_range(bootstrap, TOPICS, from_timestamp_ms=future) == []
    assert await read_range(bootstrap, ["no-such-topic.v1"], from_offset=0) == []


async def reported_ends(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The broker's answer to ListOffsets(latest) for each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def test_a_batched_range_is_read_to_its_real_end_on_every_engine(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    events = demo(world, 400, seed=9, prefix="r5")
    produced = await produce(bootstrap, events)  # batched: linger_ms=5, one send after another
    ends = log_ends(produced)
    reported = await reported_ends(bootstrap, sorted(ends))
    if engine_of(fresh_kafka_broker) == APACHE_KAFKA:
        assert reported == ends, "Apache Kafka reports the real high watermark"
    else:
        assert all(reported[tp] <= ends[tp] for tp in ends), "Tansu's end is a lower bound"
        assert reported != ends, "Tansu 0.6 fell short of the end: the batching did not batch"
    records = await read_range(bootstrap, TOPICS, from_offset=0)
    assert sorted((r.topic, r.partition, r.offset) for r in records) == sorted(
        (topic_of(p.event), p.partition, p.offset) for p in produced
    )


async def test_catalog_events_replay_idempotently_and_dry_run_predicts_them(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    skus = [p.sku for p in world.products[:20]]
    events: list[Event] = [
        CatalogEvent(f"cat-{sku}-{v}", sku, v, WHEN, title=f"{sku} v{v}")
        for v in (1, 2)
        for sku in skus
    ]
    await produce_unbatched(bootstrap, events)
    records = await read_range(bootstrap, [CATALOG.name], from_offset=0)
    predicted = await dry_run(world.redis, records)
    assert predicted.outcomes["applied"] == len(events)
    assert predicted.visible_skus == set(skus)
    first = await replay(world.pipeline(), records)
    assert first.outcomes == predicted.outcomes
    assert first.bundles_changed > 0
    await clear_purge_queues(world)
    again = await replay(
        world.pipeline(), await read_range(bootstrap, [CATALOG.name], from_offset=0)
    )
    assert again.outcomes["applied"] == 0
    assert (again.bundles_changed, again.purges_enqueued) == (0, 0)
    fields = await world.product_fields()
    assert all(fields[sku]["title"] == f"{sku} v2" for sku in skus)
