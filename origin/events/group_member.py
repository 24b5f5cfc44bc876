"""What the origin's consumer-group members share: the aggregator (experiment events) and the
context processor (the clickstream).

Both read a batch, decode each record (skipping, counting and logging by coordinates only the
ones they cannot decode: blocking a partition on a bad record would stop every later one),
fold what they decoded idempotently, and only then commit the batch's offsets. A failed commit
is logged, never raised: the batch is delivered again and folding it again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from origin.core.kafka_security import KafkaSecurity

T = TypeVar("T")
E = TypeVar("E", bound=Exception)
Offsets = dict[TopicPartition, OffsetAndMetadata]


def group_consumer(
    topic_names: Sequence[str],
    bootstrap: str,
    group_id: str,
    *,
    client_id: str,
    max_batch: int,
    session_timeout_ms: int,
    security: KafkaSecurity | None,
) -> AIOKafkaConsumer:
    """A group member that commits by hand, from the earliest offset of a new group."""
    return AIOKafkaConsumer(
        *topic_names,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_batch,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 6),
        **(security or KafkaSecurity()).client_kwargs(),
    )


@dataclass(slots=True)
class Decoded(Generic[T]):
    """A batch's decoded values, in order, and the offsets to commit once they are folded."""

    values: list[T] = field(default_factory=list)
    offsets: Offsets = field(default_factory=dict)
    records: int = 0
    undecodable: int = 0


def decode_batch(
    batch: Mapping[TopicPartition, Sequence[Any]],
    decode: Callable[[bytes], T],
    refused: type[E],
    reason: Callable[[E], str],
    log: logging.Logger,
    what: str,
) -> Decoded[T]:
    """Each record's value decoded with `decode`; a record it refuses (raising `refused`) is
    counted and logged as ``skipped undecodable <what> topic[partition]@offset: <reason>``,
    never with its contents."""
    out: Decoded[T] = Decoded()
    for tp, records in batch.items():
        for record in records:
            out.records += 1
            out.offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
            try:
                out.values.append(decode(record.value))
            except refused as exc:
                out.undecodable += 1
                log.warning(
                    "skipped undecodable %s %s[%d]@%d: %s",
                    what, tp.topic, tp.partition, record.offset, reason(exc),
                )  # fmt: skip
    return out


async def commit_logged(
    consumer: AIOKafkaConsumer, offsets: Offsets, log: logging.Logger, folding: str
) -> None:
    """Commit `offsets`; a failure is logged (the batch comes again; `folding` is idempotent)."""
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        log.warning("commit failed (%s is idempotent; redelivery is safe): %s", folding, exc)
