"""Dead letters for operators: read the dead-letter topic, filter it, and re-drive records to
their source topic after a fix (``shelfedge dlq list | show | replay``).

A dead letter is the source record's key and value, produced by the consumer
(`invalidation.consumer`) with headers naming where it came from and why
(`invalidation.records.DeadLetter.headers`). `read_dead_letters` reads the whole topic without
joining a group and returns `DeadLetterRecord`s, oldest first; `DeadLetterFilter` selects by source
topic, reason (a class such as ``unknown_sku`` or words of the reason) and time range.

Replay is idempotent twice over. The re-driven record keeps its event (and so its event id):
the consumer dedupes an event it already applied. And every re-driven dead letter is recorded
in RedisLike (`origin.core.keys.DLQ_REPLAYED_KEY`) after its produce was acknowledged, so replaying
the same dead letter again is skipped (``force`` re-drives anyway). A replayed record carries
``shelfedge.replay.of`` (the dead letter's coordinates) and the source record's trace context.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fragments import topics
from invalidation.errors import DeadLetterError
from invalidation.records import reason_class
from invalidation.replay import partitions_of
from origin.core import keys
from origin.core.kafka_security import KafkaSecurity
from origin.core.redis_client import RedisLike

log = logging.getLogger("shelfedge.dlq")

READ_IDLE_MS = 500
"""Reading stops once the end offsets are reached and a fetch this long brings nothing."""
READ_TIMEOUT_S = 60.0
REPLAY_OF_HEADER = "shelfedge.replay.of"


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of the dead-letter topic, with its source coordinates decoded."""

    partition: int
    offset: int
    timestamp_ms: int
    """When it was dead-lettered."""
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp_ms: int
    reason: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def coordinates(self) -> str:
        """``<partition>:<offset>`` in the dead-letter topic (what ``dlq show`` takes)."""
        return f"{self.partition}:{self.offset}"

    @property
    def replay_id(self) -> str:
        return f"{topics.DEAD_LETTER.name}:{self.partition}:{self.offset}"

    @property
    def reason_class(self) -> str:
        return reason_class(self.reason)

    @property
    def event_id(self) -> str | None:
        """The event id in the value, when it is JSON with one (best effort)."""
        try:
            doc = json.loads(self.value or b"")
        except ValueError:
            return None
        value = doc.get("event_id") if isinstance(doc, dict) else None
        return value if isinstance(value, str) else None

    def trace_headers(self) -> list[tuple[str, bytes]]:
        return [(n, v) for n, v in self.headers if n in ("traceparent", "tracestate")]

    def as_json(self) -> dict[str, Any]:
        value = (self.value or b"").decode("utf-8", "replace")
        return {
            "dlq": self.coordinates,
            "dead_lettered_at": _iso(self.timestamp_ms),
            "source": f"{self.source_topic}[{self.source_partition}]@{self.source_offset}",
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "source_timestamp": _iso(self.source_timestamp_ms),
            "reason_class": self.reason_class,
            "reason": self.reason,
            "event_id": self.event_id,
            "key": (self.key or b"").decode("utf-8", "replace"),
            "value": value,
        }


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def dead_letter_of(
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]],
) -> DeadLetterRecord:
    """Decode one record of the dead-letter topic (its headers name the source)."""
    hs = tuple(headers)
    named = {name: raw.decode("utf-8", "replace") for name, raw in hs}
    try:
        return DeadLetterRecord(
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            source_topic=named["shelfedge.source.topic"],
            source_partition=int(named["shelfedge.source.partition"]),
            source_offset=int(named["shelfedge.source.offset"]),
            source_timestamp_ms=int(named.get("shelfedge.source.timestamp", "0")),
            reason=named.get("shelfedge.error.reason", ""),
            key=key,
            value=value,
            headers=hs,
        )
    except (KeyError, ValueError) as exc:
        raise DeadLetterError(
            f"dead letter {partition}:{offset} lacks a readable source header ({exc}); it was "
            "not written by the shelfedge consumer"
        ) from exc


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters: every given criterion must hold."""

    topics: tuple[str, ...] = ()
    """Source topics (empty: any)."""
    reason: str | None = None
    """A reason class (``unknown_sku``) or words that occur in the reason."""
    since_ms: int | None = None
    """Dead-lettered at or after (unix milliseconds)."""
    until_ms: int | None = None
    """Dead-lettered before (unix milliseconds)."""
    coordinates: tuple[str, ...] = ()
    """Exactly these ``<partition>:<offset>`` (empty: any)."""

    def matches(self, record: DeadLetterRecord) -> bool:
        if self.topics and record.source_topic not in self.topics:
            return False
        if self.reason is not None and not (
            record.reason_class == self.reason or self.reason.lower() in record.reason.lower()
        ):
            return False
        if self.since_ms is not None and record.timestamp_ms < self.since_ms:
            return False
        if self.until_ms is not None and record.timestamp_ms >= self.until_ms:
            return False
        return not self.coordinates or record.coordinates in self.coordinates

    @property
    def is_empty(self) -> bool:
        return not (
            self.topics or self.reason or self.since_ms or self.until_ms or self.coordinates
        )


async def read_dead_letters(
    bootstrap: str,
    wanted: DeadLetterFilter | None = None,
    *,
    topic: str = topics.DEAD_LETTER.name,
    security: KafkaSecurity | None = None,
) -> list[DeadLetterRecord]:
    """Every dead letter (that `wanted` matches), oldest first; reads without a group."""
    # Partitions from the cluster's metadata (an unsubscribed consumer has none on Apache Kafka).
    assigned = await partitions_of(bootstrap, [topic], security)
    if not assigned:
        raise DeadLetterError(f"topic {topic!r} does not exist on {bootstrap}")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **(security or KafkaSecurity()).client_kwargs(),
    )
    await consumer.start()
    try:
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        out: list[DeadLetterRecord] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=READ_IDLE_MS)
            for tp, messages in batch.items():
                for m in messages:
                    record = dead_letter_of(
                        tp.partition, m.offset, m.timestamp, m.key, m.value, m.headers or ()
                    )
                    if wanted is None or wanted.matches(record):
                        out.append(record)
            at_end = all([await consumer.position(tp) >= ends[tp] for tp in assigned])
            if at_end and not batch:
                break
        return sorted(out, key=lambda r: (r.timestamp_ms, r.partition, r.offset))
    finally:
        await consumer.stop()


@dataclass(slots=True)
class ReplayReport:
    replayed: list[DeadLetterRecord] = field(default_factory=list)
    skipped: list[DeadLetterRecord] = field(default_factory=list)
    """Already re-driven before (recorded in RedisLike)."""

    def by_reason(self) -> dict[str, int]:
        return dict(Counter(r.reason_class for r in self.replayed))

    def summary(self) -> str:
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.by_reason().items())) or "none"
        return (
            f"{len(self.replayed)} dead letters re-driven ({reasons}), "
            f"{len(self.skipped)} skipped (already re-driven)"
        )


async def replay_dead_letters(
    bootstrap: str,
    redis: RedisLike,
    records: Sequence[DeadLetterRecord],
    *,
    force: bool = False,
    dry_run: bool = False,
    security: KafkaSecurity | None = None,
) -> ReplayReport:
    """Produce each dead letter's key and value to its source topic (acks=all), oldest first,
    and record it as re-driven; skip those recorded before unless `force`."""
    report = ReplayReport()
    done: set[str] = set()
    if records and not force:
        flags = await redis.smismember(keys.DLQ_REPLAYED_KEY, [r.replay_id for r in records])
        done = {r.replay_id for r, seen in zip(records, flags, strict=True) if seen}
    todo = [r for r in records if r.replay_id not in done]
    report.skipped = [r for r in records if r.replay_id in done]
    if dry_run or not todo:
        report.replayed = todo if dry_run else []
        return report
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="shelfedge-dlq-replay",
        acks="all",
        **(security or KafkaSecurity()).client_kwargs(),
    )
    await producer.start()
    try:
        for record in todo:
            headers = [*record.trace_headers(), (REPLAY_OF_HEADER, record.replay_id.encode())]
            meta = await producer.send_and_wait(
                record.source_topic, record.value, key=record.key, headers=headers
            )
            await redis.sadd(keys.DLQ_REPLAYED_KEY, record.replay_id)
            report.replayed.append(record)
            log.info(
                "dead letter %s re-driven to %s[%d]@%d (%s)",
                record.coordinates, record.source_topic, meta.partition, meta.offset,
                record.reason_class,
                extra={
                    "event": "dlq_replayed",
                    "event_id": record.event_id,
                    "topic": record.source_topic,
                    "partition": meta.partition,
                    "offset": meta.offset,
                    "dlq": record.coordinates,
                    "reason": record.reason_class,
                },
            )  # fmt: skip
    finally:
        await producer.stop()
    return report
