"""Kafka helpers of the invalidation benchmark: the raw consumption limit and group positions.

- `raw_consumption`: an aiokafka consumer-group member that fetches N records and does nothing
  with them: the most any consumer on this broker and client can do. Timed from the moment its
  partitions are assigned (the group join is a one-off cost) to the N-th record.
- `start_group_at_end`: commit the current log-end offsets for a group that has not consumed
  yet, so its first member starts with new events instead of the backlog of earlier phases
  (found by reading forward: Tansu's ListOffsets answer can fall short of the log end).
- `AssignmentClock`: when a consumer (ours or the product's) got its partitions.

It must never delete topics or commit offsets for a group the benchmark did not name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from bench.errors import BenchRunError
from fragments.topics import Topic
from invalidation.consumer import SOURCE_TOPICS, ConsumerConfig

SESSION_TIMEOUT_MS = 3000
"""Group session timeout of the benchmark's consumers: Tansu takes about half of it to join."""
POLL_S = 0.001
END_PROBE_WAIT_MS = 300
END_PROBE_EMPTY_ROUNDS = 2
"""Reading forward to the log end: it is reached after this many empty fetches in a row."""


@dataclass(frozen=True, slots=True)
class Consumed:
    """How long a consumer took for a number of records, from partition assignment."""

    records: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds


class AssignmentClock:
    """Polls a consumer until it has partitions and remembers when that happened."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.assigned_at: float | None = None

    async def watch(self, timeout: float) -> float:  # noqa: ASYNC109 - the deadline is the point
        deadline = time.perf_counter() + timeout
        while not self.consumer.assignment():
            if time.perf_counter() > deadline:
                raise BenchRunError(f"no partitions assigned within {timeout:g} s")
            await asyncio.sleep(POLL_S)
        self.assigned_at = time.perf_counter()
        return self.assigned_at


class _NoteAssignment(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned_at: float | None = None

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        if assigned and self.assigned_at is None:
            self.assigned_at = time.perf_counter()


async def raw_consumption(bootstrap: str, group_id: str, count: int, timeout: float) -> Consumed:  # noqa: ASYNC109
    """Fetch `count` records of the source topics with no processing; time from assignment."""
    config = ConsumerConfig(bootstrap=bootstrap, group_id=group_id)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id="bench-raw",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=config.window_records,
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=max(100, SESSION_TIMEOUT_MS // 6),
    )
    listener = _NoteAssignment()
    consumer.subscribe(list(SOURCE_TOPICS), listener=listener)
    await consumer.start()
    try:
        deadline = time.perf_counter() + timeout
        received = 0
        while received < count:
            if time.perf_counter() > deadline:
                raise BenchRunError(f"raw consumer got {received}/{count} records in {timeout:g} s")
            batch = await consumer.getmany(timeout_ms=200, max_records=config.window_records)
            received += sum(len(messages) for messages in batch.values())
        finished = time.perf_counter()
    finally:
        await consumer.stop()
    if listener.assigned_at is None:
        raise BenchRunError("raw consumer received records without an assignment callback")
    return Consumed(received, finished - listener.assigned_at)


async def start_group_at_end(bootstrap: str, group_id: str, topics: Sequence[Topic]) -> int:
    """Commit every partition's end offset for `group_id`; return how many records it skips."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in topics for p in range(t.partitions)]
        consumer.assign(partitions)
        # Tansu 0.6 answers ListOffsets(latest) with the base offset of the last record batch,
        # not the log end: start there and read forward until nothing more comes.
        for tp, offset in (await consumer.end_offsets(partitions)).items():
            consumer.seek(tp, offset)
        empty_rounds = 0
        while empty_rounds < END_PROBE_EMPTY_ROUNDS:
            batch = await consumer.getmany(timeout_ms=END_PROBE_WAIT_MS)
            empty_rounds = 0 if batch else empty_rounds + 1
        ends = {tp: await consumer.position(tp) for tp in partitions}
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})
        return sum(ends.values())
    finally:
        await consumer.stop()
