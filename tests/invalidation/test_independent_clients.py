"""Independent clients: events produced by librdkafka-based tools are applied by our consumer.

Two producers that share no code with shelfedge: Debian's `kcat` and PyPI's `confluent-kafka`
(librdkafka 2.x). Each test runs on both engines. On Apache Kafka both talk to the broker
directly. On Tansu, confluent-kafka does too, but Debian's kcat (librdkafka 2.0.2) cannot parse
Tansu 0.6's ApiVersions v3 answer, so it goes through the ApiVersions shim
(`tests/invalidation/kafka_shim.py`); the shim is never used with Apache Kafka.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import TopicPartition
from confluent_kafka import KafkaError, Message, Producer

from fragments.topics import ALL_TOPICS, INVENTORY
from invalidation.events import Event, InventoryEvent, PriceEvent, encode_event, topic_of
from shelfedge.localstack import ApacheKafka, ensure_topics
from tests.invalidation.kafka_shim import AdvertisedKafkaBroker, ApiVersionsShim
from tests.invalidation.support import (
    WHEN,
    GroupOffsets,
    World,
    consumer_config,
    eventually,
    expected_product_fields,
    running_consumer,
    state_differences,
)
from tests.support.kafka_engines import APACHE_KAFKA, ENGINES, Broker, empty_topics


@pytest.fixture(params=ENGINES)
async def kcat_bootstrap(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Where kcat connects: Apache Kafka itself, or a Tansu broker behind the shim kcat needs."""
    if request.param == APACHE_KAFKA:
        node: ApacheKafka = request.getfixturevalue("apache_kafka")
        await empty_topics(node.bootstrap, ALL_TOPICS)
        yield node.bootstrap
        await empty_topics(node.bootstrap, ALL_TOPICS)
        return
    async with ApiVersionsShim() as shim:
        with AdvertisedKafkaBroker(shim.port) as broker:
            shim.broker_port = broker.port
            await ensure_topics(shim.bootstrap, ALL_TOPICS)
            yield shim.bootstrap
            assert shim.downgraded > 0, "kcat never asked for ApiVersions v3: shim not needed?"


async def kcat_produce(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    process = await asyncio.create_subprocess_exec(
        "kcat", "-P", "-b", bootstrap, "-t", topic, "-k", key,
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(value + b"\n"), timeout=30)
    assert process.returncode == 0, f"kcat -P failed ({process.returncode}): {err.decode()}"


async def test_an_event_produced_by_kcat_is_applied(world: World, kcat_bootstrap: str) -> None:
    product = world.products[5]
    event = InventoryEvent("kcat-1", product.sku, "warehouse-west", 3, 42, WHEN)
    await kcat_produce(kcat_bootstrap, INVENTORY.name, product.sku, encode_event(event))
    config = consumer_config(kcat_bootstrap, f"test-{uuid.uuid4().hex[:12]}")
    async with running_consumer(config, world.pipeline()) as run:

        async def applied() -> bool:
            # The report follows the window's propagation, a moment after the state is written.
            current = await world.store.product(product.sku)
            reported = sum(r.applied for r in run.reports) > 0
            return reported and current is not None and current.stock_version == 42

        await eventually(applied, within=30, what="the kcat event was applied")
        reports = run.reports
    current = await world.store.product(product.sku)
    assert current is not None
    assert current.locations["warehouse-west"] == 3
    assert sum(r.applied for r in reports) == 1


def confluent_produce(bootstrap: str, events: list[Event]) -> dict[tuple[str, int], int]:
    """Produce with confluent-kafka (acks=all, idempotent); return each partition's log end."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "client.id": "independent-confluent-kafka",
        }
    )
    ends: dict[tuple[str, int], int] = {}
    failures: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(str(error))
            return
        where = (str(message.topic()), int(message.partition() or 0))
        ends[where] = max(ends.get(where, 0), int(message.offset() or 0) + 1)

    for event in events:
        producer.produce(
            topic_of(event), encode_event(event), key=event.sku.encode(), on_delivery=delivered
        )
        producer.poll(0)
    left = producer.flush(30)
    assert not failures, f"delivery failed: {failures[:3]}"
    assert left == 0, f"{left} messages still undelivered after 30 s"
    return ends


async def test_events_produced_by_confluent_kafka_are_applied(
    world: World, fresh_kafka_broker: Broker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    products = world.products[10:30]
    events: list[Event] = []
    for n, product in enumerate(products):
        version = 1_000_000 + n
        events.append(InventoryEvent(f"ck-i{n}", product.sku, "store-001", n, version, WHEN))
        events.append(
            PriceEvent(
                event_id=f"ck-p{n}",
                sku=product.sku,
                price_cents=1999 + n,
                currency=product.currency,
                version=version,
                occurred_at=WHEN,
            )
        )
    ends = await asyncio.to_thread(confluent_produce, bootstrap, events)
    assert sum(ends.values()) >= len(events)  # one log per partition: ends cover every event
    want_ends = {TopicPartition(t, p): end for (t, p), end in ends.items()}
    group_id = f"ck-{uuid.uuid4().hex[:12]}"
    async with (
        running_consumer(consumer_config(bootstrap, group_id), world.pipeline()) as run,
        GroupOffsets(bootstrap, group_id) as offsets,
    ):
        await eventually(
            lambda: offsets.reached(want_ends), within=30, what="the group reached the log end"
        )
    assert run.count("applied") == len(events)
    want = expected_product_fields(world.products, events)
    assert state_differences(await world.product_fields(), want) == []
