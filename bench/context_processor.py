"""The context processor's events/s in one process against raw consumption of the same backlog.

One Tansu broker and one redis-server started here; a backlog of `events` click events over
`visitors` visitors (keyed by visitor, as the collector produces them: product views in a few
categories, cart adds, a campaign on first touch) produced once to ``clickstream.v1``. Then, in
alternating rounds, each with a fresh consumer group reading the backlog from the start:

- raw: an aiokafka group member that fetches the records and does nothing with them;
- processor: `origin.context.processor.ContextProcessor` (decode, fold into profiles, decide
  segments under three rules, learn co-views, commit), over a flushed Redis so every round does
  the same work.

Both are timed from their partition assignment (the group join is a one-off cost) to the last
record. The figure is processor events/s / raw events/s (target >= 0.5).

It must never use a broker or Redis it did not start.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.errors import BenchRunError
from bench.kafka_tools import SESSION_TIMEOUT_MS, AssignmentClock
from fragments import topics
from fragments.clickstream import ClickEvent, ClickType
from origin.context.processor import MAX_BATCH, ContextProcessor
from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from origin.core.redis_client import redis_client
from origin.events.group_member import group_consumer
from shelfedge.localstack import KafkaBroker, RedisServer, ensure_topics

CATEGORIES = ("outdoor", "kitchen", "garden", "toys", "books", "tech")
RULES: dict[str, Any] = {
    "default_segment": "everyone",
    "rules": [
        {"name": "outdoor", "segment": "outdoor-fans",
         "when": [{"feature": "views:outdoor", "op": "gte", "value": 3, "within_minutes": 30}]},
        {"name": "big-cart", "segment": "big-spenders",
         "when": [{"feature": "cart_value_cents", "op": "gt", "value": 15000}]},
        {"name": "spring", "segment": "bargain-hunters",
         "when": [{"feature": "campaign", "op": "eq", "value": "spring-sale"}]},
    ],
}  # fmt: skip
TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Round:
    kind: str
    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def backlog(events: int, visitors: int, now: float, seed: int = 15) -> list[ClickEvent]:
    """`events` click events over `visitors` visitors in the last hour (deterministic)."""
    rng = random.Random(seed)
    out: list[ClickEvent] = []
    for n in range(events):
        visitor = f"v{rng.randrange(visitors):07d}"
        at = now - 3600 + n * 3600 / events
        sku = f"SKU-{rng.randrange(5000):05d}"
        kind: ClickType = "add_to_cart" if rng.random() < 0.15 else "view"
        category = rng.choice(CATEGORIES) if kind == "view" else None
        campaign = "spring-sale" if rng.random() < 0.05 else None
        out.append(
            ClickEvent(f"bench-{n:010d}", kind, visitor, f"s-{visitor}", at, True, sku,
                       category, rng.randrange(500, 30_000), campaign)
        )  # fmt: skip
    return out


async def produce(bootstrap: str, events: list[ClickEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    try:
        futures = [
            await producer.send(topics.CLICKSTREAM.name, e.to_json(), key=e.visitor.encode())
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_round(bootstrap: str, group: str, count: int) -> Round:
    # The processor's own consumer settings, with nothing done per record.
    consumer = group_consumer(
        (topics.CLICKSTREAM.name,),
        bootstrap,
        group,
        client_id="bench-raw",
        max_batch=MAX_BATCH,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        security=None,
    )
    await consumer.start()
    try:
        clock = AssignmentClock(consumer)
        received = 0
        watch = asyncio.create_task(clock.watch(30.0))
        deadline = time.perf_counter() + TIMEOUT_S
        while received < count:
            if time.perf_counter() > deadline:
                raise BenchRunError(f"raw consumer got {received}/{count} records")
            batch = await consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
            received += sum(len(records) for records in batch.values())
        finished = time.perf_counter()
        started = await watch
    finally:
        await consumer.stop()
    return Round("raw", received, finished - started)


async def processor_round(bootstrap: str, group: str, redis_url: str, count: int) -> Round:
    redis = redis_client(redis_url, timeout_ms=5000)
    try:
        await redis.flushall()
        store = ContextStore(redis, timeout=5.0)
        await store.put_rules(parse_rules(RULES), by="bench")
        processor = ContextProcessor(bootstrap, group, store, session_timeout_ms=SESSION_TIMEOUT_MS)
        await processor.start()
        stop = asyncio.Event()
        try:
            watch = asyncio.create_task(AssignmentClock(processor.consumer).watch(30.0))
            running = asyncio.create_task(processor.run(stop))
            deadline = time.perf_counter() + TIMEOUT_S
            while processor.stats.folded < count:
                if running.done():
                    running.result()
                    raise BenchRunError("the processor stopped early")
                if time.perf_counter() > deadline:
                    raise BenchRunError(f"processor got {processor.stats.records}/{count}")
                await asyncio.sleep(0.001)
            finished = time.perf_counter()
            started = await watch
            stop.set()
            await running
        finally:
            await processor.stop()
        if processor.stats.folded != count or processor.stats.undecodable:
            raise BenchRunError(f"processor folded {processor.stats} of {count} events")
        assigned = await redis.dbsize()
        if assigned < 2:
            raise BenchRunError("the processor wrote nothing to Redis")
    finally:
        await redis.aclose()
    return Round("processor", processor.stats.records, finished - started)


async def measure(events: int, visitors: int, rounds: int) -> tuple[list[Round], list[Round]]:
    """Alternating raw and processor rounds over one backlog; (raw rounds, processor rounds)."""
    with RedisServer() as redis_server, KafkaBroker() as broker:
        await ensure_topics(broker.bootstrap, [topics.CLICKSTREAM])
        await produce(broker.bootstrap, backlog(events, visitors, time.time()))
        raws: list[Round] = []
        procs: list[Round] = []
        for n in range(rounds):
            raws.append(await raw_round(broker.bootstrap, f"bench-raw-{n}", events))
            procs.append(
                await processor_round(broker.bootstrap, f"bench-ctx-{n}", redis_server.url, events)
            )
        return raws, procs
