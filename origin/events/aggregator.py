"""The aggregator: a consumer-group member folding exposures and conversions into Redis.

Loop: fetch a batch from `exposures.v1` and `conversions.v1`, decode, fold (idempotent per event
id), then commit the batch's offsets. Offsets are committed only after the fold is durable:
at-least-once delivery, exactly-once counting. Undecodable records are counted and logged with
their coordinates (never their contents) and skipped: they can never be counted, and blocking
the partition on them would stop every experiment's results. Scale out by running more
``shelfedge aggregate`` processes in the same group. It never reads or writes configuration.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from fragments import topics
from origin.core.kafka_security import KafkaSecurity
from origin.events.counters import EventCounters
from origin.events.errors import EventRejected
from origin.events.group_member import commit_logged, decode_batch, group_consumer
from origin.events.schema import decode_event

log = logging.getLogger("shelfedge.aggregator")

AGGREGATOR_TOPICS = (topics.EXPOSURES.name, topics.CONVERSIONS.name)
MAX_BATCH = 2000


@dataclass(slots=True)
class AggregatorStats:
    """Running totals, for logs, status views and tests."""

    records: int = 0
    counted: int = 0
    duplicates: int = 0
    undecodable: int = 0
    batches: int = 0


class Aggregator:
    """Consumes experiment events and folds them until stopped."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        counters: EventCounters,
        *,
        session_timeout_ms: int = 10_000,
        client_id: str = "shelfedge-aggregator",
        security: KafkaSecurity | None = None,
    ) -> None:
        self.counters = counters
        self.stats = AggregatorStats()
        self.consumer = group_consumer(
            AGGREGATOR_TOPICS,
            bootstrap,
            group_id,
            client_id=client_id,
            max_batch=MAX_BATCH,
            session_timeout_ms=session_timeout_ms,
            security=security,
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
            if batch:
                await self.process(batch)

    async def process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Fold one fetched batch and commit it."""
        decoded = decode_batch(batch, decode_event, EventRejected, _field, log, "event")
        self.stats.records += decoded.records
        self.stats.undecodable += decoded.undecodable
        counted = await self.counters.fold(decoded.values)
        self.stats.counted += counted
        self.stats.duplicates += len(decoded.values) - counted
        self.stats.batches += 1
        await commit_logged(self.consumer, decoded.offsets, log, "counting")


def _field(exc: EventRejected) -> str:
    return exc.field
