"""Replay a range of the event log into the current store.

Reads the given topics from an offset or a timestamp up to the log end seen at start, without a
consumer group (nothing is committed), and runs the same idempotent pipeline: events already
applied are duplicates or stale, their bundles recompute to the same content hash, so nothing is
written and nothing purged. `--dry-run` changes nothing: it reports what each event would do.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndTimestamp

from fragments.cards import stock_state
from invalidation.consumer import records_from_batch
from invalidation.errors import BadEvent, ReplayError
from invalidation.events import CatalogEvent, InventoryEvent, ListEvent, parse_event
from invalidation.pipeline import InvalidationPipeline
from invalidation.records import Record
from origin.core import keys
from origin.core.catalog import Product
from origin.core.kafka_security import KafkaSecurity
from origin.core.redis_client import RedisLike
from origin.core.redis_text import decode_map

BATCH = 1000
IDLE_POLL_MS = 300
READ_DEADLINE_SECONDS = 300.0


@dataclass(slots=True)
class ReplayReport:
    records: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    bundles_changed: int = 0
    purges_enqueued: int = 0
    visible_skus: set[str] = field(default_factory=set)

    def summary(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.records} records ({parts}); bundles changed: {self.bundles_changed}; "
            f"purges enqueued: {self.purges_enqueued}; SKUs with visible changes: "
            f"{len(self.visible_skus)}"
        )


async def read_range(
    bootstrap: str,
    topic_names: Sequence[str],
    *,
    from_offset: int | None = None,
    from_timestamp_ms: int | None = None,
    security: KafkaSecurity | None = None,
) -> list[Record]:
    """Every record from the start point to the log end as of now."""
    kafka_security = security or KafkaSecurity()
    partitions = await partitions_of(bootstrap, topic_names, kafka_security)
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        **kafka_security.client_kwargs(),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        if from_timestamp_ms is not None:
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, from_timestamp_ms))
            starts = {tp: _start_at(found.get(tp), ends[tp]) for tp in partitions}
        else:
            starts = dict.fromkeys(partitions, from_offset or 0)
        for tp, offset in starts.items():
            consumer.seek(tp, offset)
        # Read until every partition is past the end reported at start and a poll comes back
        # empty: some brokers (Tansu 0.6) report the start of the last record batch as the end,
        # so the reported end is a lower bound, not a stop line.
        out: list[Record] = []
        deadline = time.monotonic() + READ_DEADLINE_SECONDS
        while True:
            records = records_from_batch(
                await consumer.getmany(timeout_ms=IDLE_POLL_MS, max_records=BATCH)
            )
            out.extend(records)
            if not records and all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                return out
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"could not read {topic_names} to the log end in {READ_DEADLINE_SECONDS:.0f} s"
                )
    finally:
        await consumer.stop()


async def partitions_of(
    bootstrap: str, topic_names: Sequence[str], security: KafkaSecurity | None = None
) -> list[TopicPartition]:
    """Every partition of the named topics that exist, in topic then partition order.

    Asked of the cluster's metadata through an admin client: a consumer with no subscription
    holds metadata for no topic on Apache Kafka (Tansu answers its empty topic list with every
    topic), and naming a missing topic in a Metadata request could create it.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="shelfedge-replay",
        **(security or KafkaSecurity()).client_kwargs(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topic_names if t in existing]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    found = {str(entry["topic"]): entry for entry in described if entry["error_code"] == 0}
    return [
        TopicPartition(t, p)
        for t in wanted
        if t in found
        for p in sorted(int(part["partition"]) for part in found[t]["partitions"])
    ]


def _start_at(found: OffsetAndTimestamp | None, end: int) -> int:
    """Where a time-based range starts in one partition: the first record at or after the
    time, or the log end when there is none. Kafka answers "none" with offset -1 (None here);
    some brokers (Tansu 0.6) answer offset 0 with timestamp -1, which must not mean "from 0"."""
    if found is None or found.timestamp < 0:
        return end
    return int(found.offset)


async def replay(pipeline: InvalidationPipeline, records: Sequence[Record]) -> ReplayReport:
    """Apply the records through the pipeline, in log order per partition."""
    report = ReplayReport(records=len(records))
    for start in range(0, len(records), BATCH):
        batch = await pipeline.process(records[start : start + BATCH])
        report.outcomes.update(
            applied=batch.applied,
            duplicate=batch.duplicates,
            stale=batch.stale,
            dead_letter=len(batch.dead_letters),
        )
        report.bundles_changed += len(batch.changed)
        report.purges_enqueued += batch.purges_enqueued
    return report


async def dry_run(redis: RedisLike, records: Sequence[Record]) -> ReplayReport:
    """What `replay` would do, without writing anything."""
    report = ReplayReport(records=len(records))
    versions: dict[tuple[str, str], int] = {}
    for record in records:
        try:
            event = parse_event(record.topic, record.value)
        except BadEvent:
            report.outcomes["dead_letter"] += 1
            continue
        if isinstance(event, ListEvent):
            report.outcomes["list"] += 1  # whole lists: version-gated on replay, not dry-run here
            continue
        fields = await redis.hgetall(keys.product_key(event.sku))
        if not fields:
            report.outcomes["dead_letter"] += 1
            continue
        doc = decode_map(fields)
        seen = await redis.lpos(keys.event_seen_key(event.sku), event.event_id)
        if seen is not None:
            report.outcomes["duplicate"] += 1
            continue
        if isinstance(event, InventoryEvent):
            gate = "ver:" + event.location
        else:
            gate = "content_version" if isinstance(event, CatalogEvent) else "price_version"
        applied = max(int(doc.get(gate, "0")), versions.get((event.sku, gate), 0))
        if event.version <= applied:
            report.outcomes["stale"] += 1
            continue
        versions[(event.sku, gate)] = event.version
        report.outcomes["applied"] += 1
        product = Product.from_hash(doc)
        if isinstance(event, InventoryEvent):
            new_total = product.stock - product.locations.get(event.location, 0) + event.available
            if stock_state(new_total) != stock_state(product.stock):
                report.visible_skus.add(event.sku)
        elif isinstance(event, CatalogEvent):
            report.visible_skus.add(event.sku)  # content: the recompute's content hash decides
        elif (event.price_cents, event.compare_at_cents, event.promo) != (
            product.price_cents,
            product.compare_at_cents,
            product.promo,
        ):
            report.visible_skus.add(event.sku)
    return report
