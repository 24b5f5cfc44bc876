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

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from fragments import topics
from origin.core.kafka_security import KafkaSecurity
from origin.events.counters import EventCounters
from origin.events.errors import EventRejected
from origin.events.schema import ExperimentEvent, decode_event

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
        self.consumer = AIOKafkaConsumer(
            *AGGREGATOR_TOPICS,
            bootstrap_servers=bootstrap,
            group_id=group_id,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=MAX_BATCH,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 6),
            **(security or KafkaSecurity()).client_kwargs(),
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
        events: list[ExperimentEvent] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batch.items():
            for record in records:
                self.stats.records += 1
                try:
                    events.append(decode_event(record.value))
                except EventRejected as exc:
                    self.stats.undecodable += 1
                    log.warning(
                        "skipped undecodable event %s[%d]@%d: %s",
                        tp.topic, tp.partition, record.offset, exc.field,
                    )  # fmt: skip
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
        counted = await self.counters.fold(events)
        self.stats.counted += counted
        self.stats.duplicates += len(events) - counted
        self.stats.batches += 1
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("commit failed (counting is idempotent; redelivery is safe): %s", exc)
