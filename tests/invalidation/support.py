"""Helpers shared by the invalidation tests: a seeded world, expected state, Kafka plumbing.

- `World`: a small demo catalog seeded into a real Redis, with the store and recomputer the
  pipeline uses, plus what to compare against (`consistency_problems`).
- `expected_product_fields`: the final product documents a stream of events must leave in Redis
  (last version wins per SKU and location for stock, per SKU for price), computed in Python.
- `WHEN`: the `occurred_at` of hand-made events.
- `eventually`: poll a condition until a deadline (tests never assert on a sleep).
- Kafka helpers on real brokers: produce with coordinates, end offsets, committed offsets.

Test support only; it never reaches beyond loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from fragments.topics import CATALOG, INVENTORY, PRICE
from invalidation.apply import EventApplier
from invalidation.consumer import ConsumerConfig, InvalidationConsumer
from invalidation.events import Event, InventoryEvent, PriceEvent, encode_event, topic_of
from invalidation.metrics import InvalidationMetrics
from invalidation.pipeline import BatchReport, InvalidationPipeline
from invalidation.records import Record
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.catalog import Product
from origin.core.demo_catalog import generate_catalog
from origin.core.envelope import open_envelope
from origin.core.kafka_security import KafkaSecurity
from origin.core.recompute import Recomputer
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text, decode_map
from origin.core.scoring import rank
from origin.core.seed import seed_demo
from origin.core.store import Store

CATALOG_SEED = 42
CATALOG_SKUS = 300
SOURCE_TOPICS = (INVENTORY.name, PRICE.name)
SOURCE_PARTITIONS = tuple(
    TopicPartition(t.name, p) for t in (INVENTORY, PRICE, CATALOG) for p in range(t.partitions)
)
# Consumer-group joins on Tansu take about session_timeout / 2: keep sessions short in tests.
TEST_SESSION_TIMEOUT_MS = 3000

WHEN = datetime(2026, 1, 1, 10, tzinfo=UTC)
"""The `occurred_at` of the events tests make by hand."""


@dataclass(frozen=True, slots=True, repr=False)
class World:
    """A seeded demo catalog in a real Redis and the objects the pipeline runs on."""

    redis: RedisLike
    store: Store
    recomputer: Recomputer
    products: tuple[Product, ...]

    def __repr__(self) -> str:
        return f"<World {len(self.products)} SKUs, {len(self.recomputer.all_keys())} bundles>"

    def pipeline(
        self, purgers: Sequence[str] = ("local-edge",), *, suppress_unchanged: bool = True
    ) -> InvalidationPipeline:
        return InvalidationPipeline(
            EventApplier(self.redis),
            self.recomputer,
            purgers,
            suppress_unchanged=suppress_unchanged,
        )

    def narrowed(self, segment_ids: Sequence[str]) -> World:
        """The same store seen through a recomputer over only these segments (fewer bundles)."""
        segments = [self.recomputer.segments[s] for s in segment_ids]
        recomputer = Recomputer(self.store, self.recomputer.builder, segments)
        return World(self.redis, self.store, recomputer, self.products)

    def product(self, sku: str) -> Product:
        for p in self.products:
            if p.sku == sku:
                return p
        raise KeyError(sku)

    async def bundle_skus(self) -> dict[FragmentKey, tuple[str, ...]]:
        """The SKUs each stored bundle shows (decoded from the stored envelope)."""
        out: dict[FragmentKey, tuple[str, ...]] = {}
        for key in self.recomputer.all_keys():
            raw = await self.store.get_envelope(key)
            if raw is None:
                raise AssertionError(f"bundle {key.cache_key} is not stored")
            out[key] = decode_bundle(open_envelope(raw).body).skus
        return out

    async def content_hashes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in self.recomputer.all_keys():
            state = await self.store.stored_state(key)
            if state is None:
                raise AssertionError(f"bundle {key.cache_key} has no stored hash")
            out[key.cache_key] = state.content_hash
        return out

    async def product_fields(self) -> dict[str, dict[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for p in self.products:
            pipe.hgetall(keys.product_key(p.sku))
        rows = await pipe.execute()
        return {p.sku: decode_map(row) for p, row in zip(self.products, rows, strict=True)}

    async def queued_tags(self, purger: str) -> dict[str, float]:
        """Every tag waiting in `purger`'s queues, with its score."""
        out: dict[str, float] = {}
        for partition in self.recomputer.partitions:
            rows: list[Any] = await self.redis.zrange(
                keys.purge_queue_key(partition, purger), 0, -1, withscores=True
            )
            out.update((as_text(tag), float(score)) for tag, score in rows)
        return out

    async def consistency_problems(self) -> list[str]:
        """Differences between what is stored and a from-scratch rebuild of current state.

        Every ranked list must hold the best products of `rank()` over the current products
        (a list keeps its best `list_depth`, in its own order: score, then SKU), at least as
        many as its bundles carry, above a floor no product outside it beats; every bundle
        must recompute to its stored content (`changed=False`), and the SKU index must match
        the stored bundles. An empty list means consistent.
        """
        problems: list[str] = []
        current = list((await self.store.products(p.sku for p in self.products)).values())
        slots = self.recomputer.slots
        for pid, partition in self.recomputer.partitions.items():
            slot = slots.slots[partition.slot]
            ranked = rank(current, partition.segment, slot.scoring, len(current), slot.labels)
            want = sorted(((v, p.sku) for p, v in ranked), reverse=True)
            rows: list[Any] = await self.redis.zrange(
                keys.segment_list_key(pid), 0, -1, withscores=True
            )
            have = sorted(((float(v), as_text(sku)) for sku, v in rows), reverse=True)
            if have != want[: len(have)]:
                diff = sorted(set(have) ^ set(want[: len(have)]))[:6]
                problems.append(f"list {pid} differs from a fresh ranking: {diff}")
            if len(have) < min(slot.candidates, len(want)):
                problems.append(f"list {pid} holds {len(have)} of {len(want)} candidates")
            if len(have) < len(want):
                floor = await self.redis.hget(keys.list_floors_key(pid), pid)
                value, _, sku = as_text(floor or "").partition(" ")
                if not floor or (float(value), sku) < want[len(have)]:
                    problems.append(f"list {pid}: a product outside it beats its floor {floor!r}")
        for key in self.recomputer.all_keys():
            result = await self.recomputer.recompute(key)
            if result.changed:
                problems.append(f"bundle {key.cache_key} was stale (a recompute changed it)")
        for key, skus in (await self.bundle_skus()).items():
            indexed = await self.store.bundle_skus(key)
            if list(skus) != indexed:
                problems.append(f"bundle->skus index of {key.cache_key} is out of step")
            showing = await self.store.bundles_showing(list(skus), [key.partition])
            missing = [sku for sku in skus if key not in showing.get(sku, set())]
            if missing:
                problems.append(f"sku index misses {key.cache_key} for {missing[:5]}")
        return problems


async def seed_world(redis: RedisLike, n_skus: int = CATALOG_SKUS) -> World:
    """Seed the demo catalog (every list and bundle built) and return the world around it."""
    await seed_demo(Store(redis, timeout=5.0), load_slots(), seed=CATALOG_SEED, n_skus=n_skus)
    return world_on(redis, n_skus)


def world_on(redis: RedisLike, n_skus: int = CATALOG_SKUS) -> World:
    """The world objects over a Redis that already holds the seeded catalog."""
    slots = load_slots()
    store = Store(redis, timeout=5.0)
    catalog = generate_catalog(CATALOG_SEED, n_skus)
    recomputer = Recomputer(store, BundleBuilder(slots), catalog.segments)
    return World(redis, store, recomputer, catalog.products)


@dataclass(frozen=True, slots=True, repr=False)
class Snapshot:
    """Every key of a Redis database and its DUMP payload."""

    payloads: dict[bytes, bytes]

    def __repr__(self) -> str:
        return f"<Snapshot of {len(self.payloads)} keys>"


async def take_snapshot(redis: RedisLike) -> Snapshot:
    out: dict[bytes, bytes] = {}
    async for key in redis.scan_iter(count=1000):
        payload = await redis.dump(key)
        if payload is not None:
            out[key] = payload
    return Snapshot(out)


async def restore_snapshot(redis: RedisLike, snapshot: Snapshot) -> None:
    """Make the database hold exactly `snapshot` (far faster than seeding again)."""
    await redis.flushdb()
    pipe = redis.pipeline(transaction=False)
    for key, payload in snapshot.payloads.items():
        pipe.restore(key, 0, payload, replace=True)
    await pipe.execute()


def expected_product_fields(
    products: Iterable[Product], events: Iterable[Event]
) -> dict[str, dict[str, str]]:
    """Each product's Redis document after `events`, whatever their order or repetition.

    Stock: per (SKU, location) the highest version wins; the total is the sum of locations and
    `stock_version` the highest inventory version. Price: per SKU the highest version wins.
    """
    fields = {p.sku: p.to_hash() for p in products}
    best_stock: dict[tuple[str, str], InventoryEvent] = {}
    best_price: dict[str, PriceEvent] = {}
    for event in events:
        if isinstance(event, InventoryEvent):
            k = (event.sku, event.location)
            if k not in best_stock or best_stock[k].version < event.version:
                best_stock[k] = event
        elif isinstance(event, PriceEvent) and (
            event.sku not in best_price or best_price[event.sku].version < event.version
        ):
            best_price[event.sku] = event
    for (sku, location), inv in best_stock.items():
        doc = fields[sku]
        doc["loc:" + location] = str(inv.available)
        doc["ver:" + location] = str(inv.version)
        doc["stock_version"] = str(max(int(doc["stock_version"]), inv.version))
    for doc in fields.values():
        doc["stock"] = str(sum(int(v) for k, v in doc.items() if k.startswith("loc:")))
    for sku, price in best_price.items():
        doc = fields[sku]
        doc["price_cents"] = str(price.price_cents)
        doc["currency"] = price.currency
        doc["compare_at_cents"] = (
            "" if price.compare_at_cents is None else str(price.compare_at_cents)
        )
        doc["promo"] = price.promo or ""
        doc["price_version"] = str(price.version)
    return fields


def state_differences(
    have: dict[str, dict[str, str]], want: dict[str, dict[str, str]]
) -> list[str]:
    """Per SKU, the fields whose stored value differs from the expected one."""
    out: list[str] = []
    for sku in sorted(want):
        got = have.get(sku, {})
        bad = {
            f: (got.get(f), want[sku].get(f))
            for f in set(got) | set(want[sku])
            if got.get(f) != want[sku].get(f)
        }
        if bad:
            out.append(f"{sku}: {dict(sorted(bad.items()))} (stored, expected)")
    return out


def record_of(event: Event, offset: int, *, partition: int = 0, timestamp_ms: int = 0) -> Record:
    """A consumed-record view of `event`, as if read from its topic."""
    return Record(
        topic=topic_of(event),
        partition=partition,
        offset=offset,
        key=event.sku.encode(),
        value=encode_event(event),
        timestamp_ms=timestamp_ms or int(time.time() * 1000),
    )


async def eventually(
    condition: Callable[[], Awaitable[bool]],
    *,
    within: float,
    what: str,
    interval: float = 0.05,
) -> float:
    """Poll `condition` until true; return the seconds it took, or fail naming `what`."""
    started = time.monotonic()
    while True:
        if await condition():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within:g}s waiting until {what}")
        await asyncio.sleep(interval)


@dataclass(frozen=True, slots=True)
class Produced:
    """An event and where the broker put it."""

    event: Event
    partition: int
    offset: int


async def produce(bootstrap: str, events: Sequence[Event]) -> list[Produced]:
    """Produce events keyed by SKU (acks=all) and return their coordinates."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(topic_of(e), encode_event(e), key=e.sku.encode()) for e in events
        ]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Produced(e, m.partition, m.offset) for e, m in zip(events, metadata, strict=True)]


async def produce_raw(
    bootstrap: str,
    topic: str,
    value: bytes,
    key: bytes | None = None,
    *,
    security: KafkaSecurity | None = None,
) -> tuple[int, int]:
    """Produce one raw value (as `security` says, PLAINTEXT by default); return (partition,
    offset)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_request_size=2**21,
        **(security or KafkaSecurity()).client_kwargs(),
    )
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    return meta.partition, meta.offset


def log_ends(produced: Iterable[Produced]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the last produced event (what the group must reach).

    Computed from the producer's acknowledgements rather than ListOffsets: Tansu 0.6 answers a
    "latest offset" request with the last batch's base offset + 1, which is short of the log
    end whenever the producer batched several records.
    """
    ends: dict[TopicPartition, int] = {}
    for p in produced:
        tp = TopicPartition(topic_of(p.event), p.partition)
        ends[tp] = max(ends.get(tp, 0), p.offset + 1)
    return ends


class GroupOffsets:
    """Reads a group's committed offsets without joining the group."""

    def __init__(self, bootstrap: str, group_id: str) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
        )

    async def __aenter__(self) -> GroupOffsets:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def committed(
        self, partitions: Iterable[TopicPartition] = SOURCE_PARTITIONS
    ) -> dict[TopicPartition, int]:
        """Committed offset per partition (0 when nothing is committed yet)."""
        out: dict[TopicPartition, int] = {}
        for tp in partitions:
            value = await self._consumer.committed(tp)
            out[tp] = value if value is not None and value >= 0 else 0
        return out

    async def reached(self, ends: dict[TopicPartition, int]) -> bool:
        """True when the group has committed exactly up to `ends` in each of its partitions."""
        return await self.committed(ends) == ends


async def read_topic(bootstrap: str, topic: str, partitions: int, expect: int) -> list[Any]:
    """The records of `topic` (no group): waits for `expect` of them, then checks for extras.

    Returns aiokafka ConsumerRecords, in partition then offset order.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        out: list[Any] = []
        deadline = time.monotonic() + 20
        while len(out) < expect:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(out)} of {expect} records on {topic} after 20s")
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(messages)
        for messages in (await consumer.getmany(timeout_ms=300)).values():
            out.extend(messages)  # anything beyond `expect` fails the caller's count check
        return sorted(out, key=lambda m: (m.partition, m.offset))
    finally:
        await consumer.stop()


def consumer_config(bootstrap: str, group_id: str, **overrides: Any) -> ConsumerConfig:
    """A consumer config with test-friendly group timings (and any overrides)."""
    settings: dict[str, Any] = {
        "window_ms": 50,
        "max_in_flight": 200,
        "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
        "client_id": f"test-{group_id}",
    }
    settings.update(overrides)
    return ConsumerConfig(bootstrap=bootstrap, group_id=group_id, **settings)


@dataclass(frozen=True, slots=True)
class ConsumerRun:
    """A started consumer and the task running its loop."""

    consumer: InvalidationConsumer
    task: asyncio.Task[None]

    @property
    def reports(self) -> list[BatchReport]:
        """The most recent batch reports (the consumer keeps the last 100)."""
        return list(self.consumer.reports)

    def count(self, outcome: str) -> int:
        """Events of every batch so far by outcome (applied, duplicate, stale, dead_letter),
        or records read when `outcome` is "consumed" (from the consumer's metrics)."""
        registry = self.consumer.metrics.registry
        if outcome == "consumed":
            return int(
                sum(
                    registry.get_sample_value(
                        "shelfedge_events_total", {"topic": t, "outcome": "consumed"}
                    )
                    or 0
                    for t in SOURCE_TOPICS
                )
            )
        value = registry.get_sample_value(
            "shelfedge_events_total", {"topic": "all", "outcome": outcome}
        )
        return int(value or 0)


@asynccontextmanager
async def running_consumer(
    config: ConsumerConfig, pipeline: InvalidationPipeline
) -> AsyncIterator[ConsumerRun]:
    """Start an InvalidationConsumer and run it in a task; stop it (window completes) on exit.

    A consumer loop that died with an error fails the test at exit with that error.
    """
    consumer = InvalidationConsumer(config, pipeline, InvalidationMetrics.create())
    await consumer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop), name=f"consumer-{config.group_id}")
    try:
        yield ConsumerRun(consumer, task)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)  # cancels a loop that will not stop
        finally:
            await consumer.stop()
