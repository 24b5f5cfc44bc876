"""The Kafka side of invalidation: a consumer-group member that feeds the pipeline in windows.

Loop: collect records for one coalescing window (at most `window_records`; fetching, and
decoding what is fetched, go on in the background meanwhile), apply its events under the work
lock, then hand it to the propagation task: impacted bundles, recomputes and purges
(`InvalidationPipeline.propagate`), dead letters produced, offsets committed. Offsets are
committed only after every effect is durable: at-least-once delivery with idempotent effects.

Two windows are in the pipeline at most: while window N propagates (mostly Python), window N+1
is applied (mostly Lua in Redis), so the two cores work at once, and the buffer fills for N+2.
Windows propagate and commit one at a time, in order: N+1 is handed over only once N has
committed. Backpressure: the buffer and the two windows hold at most `max_in_flight` records
fetched but not committed, a third each.

Windows adapt (`invalidation.window_policy`): a window closes at `window_ms` after its first
record, when it holds `window_records` (under a backlog every fetch fills it, so windows grow to
that size and the per-window costs are shared by more records), or as soon as the stream has
been quiet for `quiet_ms` (nothing fetched since): a lone change is not held for the whole
window. A consumer that fell behind finds its buffered records already due and takes them as one
larger window.

Rebalance: `on_partitions_revoked` takes the work lock and waits for the window in propagation,
so in-flight work is done and committed before the partitions go; records collected but not yet
applied for revoked partitions are handed back (dropped uncommitted; the next owner re-reads
them), and the member stops reporting their lag (`forget_lag`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from opentelemetry import trace
from opentelemetry.trace import Span

from fragments import topics
from invalidation.metrics import InvalidationMetrics
from invalidation.pipeline import AppliedBatch, BatchReport, InvalidationPipeline
from invalidation.records import DecodedRecords, Record
from invalidation.settings import DEFAULT_MAX_IN_FLIGHT
from invalidation.tracing import start_window_span
from invalidation.window_policy import DEFAULT_WINDOW_MS, Close, WindowPolicy
from origin.core.kafka_security import KafkaSecurity
from origin.errors import StoreUnavailable

log = logging.getLogger("shelfedge.consumer")
_T = TypeVar("_T")

SOURCE_TOPICS = (
    topics.INVENTORY.name,
    topics.PRICE.name,
    topics.CATALOG.name,
    topics.LISTS.name,
)
LAG_REFRESH_S = 1.0
"""How often a member asks the broker for its partitions' log end offsets (its lag gauge)."""
WINDOWS_IN_FLIGHT = 3
"""The fetch buffer filling the next window, the window being applied and the one propagating."""


@dataclass(frozen=True, slots=True)
class ConsumerConfig:
    bootstrap: str
    group_id: str
    window_ms: int = DEFAULT_WINDOW_MS
    """Coalescing window: records collected this long after the first are one batch."""
    quiet_ms: int | None = None
    """A window closes early when nothing arrived for this long (None: a quarter of
    `window_ms`, at least twice the fetch wait so a flowing stream never looks quiet)."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """At most this many records are fetched but not committed (backpressure): the fetch buffer,
    the window being applied and the window being propagated together."""
    topics: tuple[str, ...] = SOURCE_TOPICS
    client_id: str = "shelfedge-invalidation"
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    """TLS / SASL of the consumer and its dead-letter producer."""
    session_timeout_ms: int = 10_000
    """Group session timeout: a member silent this long is dropped and its partitions move
    (some brokers, e.g. Tansu, also take about half of it to complete a join)."""

    store_retry_s: float = 0.0
    """While Redis is unavailable (StoreUnavailable: a failover, a restart), retry the window's
    stage this long, with a short backoff, before the failure ends the run. Safe: both stages
    are idempotent (version gates, content hashes) and nothing commits until one succeeds."""

    @property
    def quiet_seconds(self) -> float:
        quiet = self.quiet_ms if self.quiet_ms is not None else self.window_ms // 4
        return max(quiet, 2 * self.fetch_wait_ms) / 1000

    @property
    def policy(self) -> WindowPolicy:
        """When a window closes (`invalidation.window_policy`)."""
        return WindowPolicy(self.window_ms / 1000, self.quiet_seconds, self.window_records)

    @property
    def fetch_wait_ms(self) -> int:
        """How long a fetch waits for records: well inside the coalescing window."""
        return max(5, self.window_ms // 10)

    @property
    def window_records(self) -> int:
        """A window holds at most this many records: a share of `max_in_flight` that lets the
        buffer fill while two windows are in the pipeline."""
        return max(1, self.max_in_flight // WINDOWS_IN_FLIGHT)

    @property
    def heartbeat_interval_ms(self) -> int:
        """Heartbeats well inside the session timeout (a sixth of it, at least 100 ms)."""
        return max(100, self.session_timeout_ms // 6)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: InvalidationConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        async with self.owner.work_lock:
            await self.owner.settle()
            self.owner.revoked.update(revoked)
            self.owner.forget_lag(revoked)
        log.info("partitions revoked after in-flight work finished: %s", sorted(map(str, revoked)))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        self.owner.revoked.difference_update(assigned)
        log.info("partitions assigned: %s", sorted(map(str, assigned)))


class InvalidationConsumer:
    """Runs the pipeline against a consumer group until stopped."""

    def __init__(
        self, config: ConsumerConfig, pipeline: InvalidationPipeline, metrics: InvalidationMetrics
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.metrics = metrics
        self.work_lock = asyncio.Lock()
        self.revoked: set[TopicPartition] = set()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap,
            group_id=config.group_id,
            client_id=config.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.window_records,
            # A broker may hold a fetch until its max wait even when data is there (Tansu does):
            # keep the wait well inside the coalescing window, or the window stretches to it.
            fetch_max_wait_ms=config.fetch_wait_ms,
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            **config.security.client_kwargs(),
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=config.bootstrap,
            client_id=config.client_id + "-dlq",
            acks="all",
            **config.security.client_kwargs(),
        )
        self._next_offset: dict[TopicPartition, int] = {}
        self._buffer = DecodedRecords()
        """Fetched, decoded, not yet processed."""
        self._uncommitted = 0
        """Records taken into windows that have not committed yet (applying or propagating)."""
        self._first_at = 0.0
        self._last_at = 0.0
        """When records last arrived in the buffer (`quiet_ms` counts from it)."""
        self._arrived = asyncio.Event()
        self._drained = asyncio.Event()
        self._propagating: asyncio.Task[None] | None = None
        """The window being propagated and committed (at most one)."""
        self.reports: list[BatchReport] = []
        """The most recent batch reports (bounded), for status views and tests."""

    async def start(self) -> None:
        await self.producer.start()
        self.consumer.subscribe(list(self.config.topics), listener=_Rebalance(self))
        await self.consumer.start()

    async def stop(self) -> None:
        try:
            await self.consumer.stop()
        finally:
            await self.producer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set (the current window completes first).

        Fetching runs in the background while a window is processed, so the next window is
        already filling: a window's cycle is max(window, processing), not their sum.
        """
        fetcher = asyncio.create_task(self._fetch_loop(stop))
        lag = asyncio.create_task(self._lag_loop(stop))
        try:
            while not stop.is_set():
                records = await self._collect(stop)
                if records:
                    await self._process(records)
                if fetcher.done():
                    fetcher.result()
            await self.settle()
        finally:
            for task in (fetcher, lag):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._propagating is not None and not self._propagating.done():
                self._propagating.cancel()  # only on failure or cancellation: nothing commits
                with contextlib.suppress(asyncio.CancelledError):
                    await self._propagating

    async def settle(self) -> None:
        """Wait until the window in propagation has committed (re-raises its failure, every
        time it is asked, so the run loop sees it even when a rebalance saw it first)."""
        task = self._propagating
        if task is not None:
            await task
            self._propagating = None

    async def _lag_loop(self, stop: asyncio.Event) -> None:
        """Report each assigned partition's lag every `LAG_REFRESH_S`, whatever the windows do."""
        while not stop.is_set():
            try:
                await self.report_lag()
            except KafkaError as exc:
                log.debug("lag not refreshed (the broker will answer a later round): %s", exc)
            except Exception:  # a gauge must never stop the consumer; say so, try next round
                log.warning("lag not refreshed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), LAG_REFRESH_S)

    async def report_lag(self) -> None:
        """Set ``shelfedge_consumer_lag`` of each assigned partition: its log end offset, asked
        of the broker now, minus the next offset this member commits (the group's committed
        offset until it commits one itself; the log start where the group never committed).

        Not the fetcher's high-water mark alone: that moves only when the member fetches from the
        partition, and a member behind a backlog fetches nothing new while its buffer is full,
        so under exactly the load the lag alert is for, that lag would look flat or falling.
        The larger of the two is taken: each can fall short of the log end.
        """

        def owned() -> set[TopicPartition]:
            return set(self.consumer.assignment()) - self.revoked

        committed: dict[TopicPartition, int] = {}
        never: list[TopicPartition] = []
        for tp in owned() - set(self._next_offset):
            offset = await self.consumer.committed(tp)
            if offset is None:
                never.append(tp)
            else:
                committed[tp] = offset
        if never:  # the group starts these from the log start (auto_offset_reset=earliest)
            starts: dict[TopicPartition, int] = await self.consumer.beginning_offsets(never)
            committed.update(starts)
        for tp, offset in committed.items():
            if tp in owned():  # a rebalance may have taken it during the await
                self._next_offset[tp] = max(self._next_offset.get(tp, 0), offset)
        known = [tp for tp in owned() if tp in self._next_offset]
        if not known:
            return
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(known)
        for tp, listed in ends.items():
            if tp in owned() and tp in self._next_offset:
                # Both are lower bounds of the log end (Tansu 0.6 answers ListOffsets with the
                # last batch's base offset + 1; the high-water mark is as old as the last fetch).
                end = max(listed, self.consumer.highwater(tp) or 0)
                lag = max(0, end - self._next_offset[tp])
                self.metrics.lag.labels(f"{tp.topic}:{tp.partition}").set(lag)

    def forget_lag(self, partitions: Sequence[TopicPartition]) -> None:
        """Stop reporting lag for partitions this member gave up: their new owner reports it,
        and a gauge left at its last value would hold ``shelfedge:consumer_lag:sum`` up (and
        ``ShelfedgeConsumerLagGrowing`` firing) after a rebalance moved them away."""
        for tp in partitions:
            self._next_offset.pop(tp, None)
            with contextlib.suppress(KeyError):
                self.metrics.lag.remove(f"{tp.topic}:{tp.partition}")

    @property
    def in_flight(self) -> int:
        """Records fetched but not committed: never more than `max_in_flight`."""
        return len(self._buffer) + self._uncommitted

    async def _fetch_loop(self, stop: asyncio.Event) -> None:
        """Keep the buffer filled up to a window's worth, within `max_in_flight` in all."""
        limit, window = self.config.max_in_flight, self.config.window_records
        while not stop.is_set():
            room = min(window, limit - self._uncommitted) - len(self._buffer)
            if room <= 0:
                self._drained.clear()
                await self._drained.wait()
                continue
            batch = await self.consumer.getmany(timeout_ms=100, max_records=room)
            records = records_from_batch(batch)
            if records:
                now = time.monotonic()
                if not self._buffer:
                    self._first_at = now
                self._last_at = now
                self._buffer.add(records)
                self._arrived.set()

    async def _collect(self, stop: asyncio.Event) -> DecodedRecords | None:
        """One coalescing window: from the first buffered record, `window_ms` (or until the
        buffer holds a window's worth of records, or nothing arrived for `quiet_ms`), then
        everything buffered."""
        if not self._buffer:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=0.2)
            if not self._buffer:
                return None
        policy = self.config.policy
        while not stop.is_set():
            wait = policy.decide(len(self._buffer), self._first_at, self._last_at, time.monotonic())
            if isinstance(wait, Close):
                break
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=wait)
        records, self._buffer = self._buffer, DecodedRecords()
        self._uncommitted += len(records)
        self._drained.set()
        return records

    async def _process(self, batch: DecodedRecords) -> None:
        """Apply a window, then hand it over for propagation once the one before committed."""
        async with self.work_lock:
            assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
            if {(r.topic, r.partition) for r in batch.records} - assigned:
                kept = batch.keeping(lambda r: (r.topic, r.partition) in assigned)
                log.info("handed back %d records of revoked partitions", len(batch) - len(kept))
                self._release(len(batch) - len(kept))
                batch = kept
            if not batch:
                return
            window = start_window_span(batch.records)
            try:
                with trace.use_span(window, end_on_exit=False):
                    applied = await self._retrying(lambda: self.pipeline.apply_events(batch))
                    await self.settle()
                    # The task copies the current context: propagation runs under the window.
                    self._propagating = asyncio.create_task(self._propagate(applied, window))
            except BaseException:
                window.end()
                raise

    def _release(self, records: int) -> None:
        """`records` left the pipeline (committed, or handed back): room to fetch more."""
        self._uncommitted -= records
        self._drained.set()

    async def _retrying(self, stage: Callable[[], Awaitable[_T]]) -> _T:
        """`stage()`, tried again while Redis is unavailable, for up to `store_retry_s`."""
        deadline = time.monotonic() + self.config.store_retry_s
        pause = 0.05
        while True:
            try:
                return await stage()
            except StoreUnavailable as exc:
                if time.monotonic() + pause > deadline:
                    raise
                log.warning("redis unavailable, retrying the window in %.2fs: %s", pause, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def _propagate(self, applied: AppliedBatch, window: Span) -> None:
        """Propagate a window, produce its dead letters, then commit its offsets (then end the
        window's span)."""
        batch = applied.batch
        try:
            report = await self._retrying(lambda: self.pipeline.propagate(applied))
            for dead in report.dead_letters:
                await self.producer.send_and_wait(
                    topics.DEAD_LETTER.name,
                    value=dead.record.value,
                    key=dead.record.key,
                    headers=dead.headers(),
                )
                self.metrics.dead_letters.labels(dead.record.topic, dead.reason_class).inc()
                log.warning(
                    "dead-lettered %s[%d]@%d: %s",
                    dead.record.topic, dead.record.partition, dead.record.offset, dead.reason,
                    extra={
                        "event": "dead_lettered",
                        "topic": dead.record.topic,
                        "partition": dead.record.partition,
                        "offset": dead.record.offset,
                        "reason": dead.reason_class,
                    },
                )  # fmt: skip
            next_offsets = next_offsets_of(batch.records)
            try:
                await self.consumer.commit(
                    {tp: OffsetAndMetadata(offset, "") for tp, offset in next_offsets.items()}
                )
            except (CommitFailedError, KafkaError) as exc:
                log.warning("commit failed (effects are idempotent; redelivery is safe): %s", exc)
            self._observe(report, batch.records, next_offsets)
        finally:
            window.end()
            self._release(len(batch))

    def _observe(
        self, report: BatchReport, records: list[Record], next_offsets: dict[TopicPartition, int]
    ) -> None:
        m = self.metrics
        m.batches.inc()
        m.batch_seconds.observe(report.seconds)
        for topic, count in Counter(r.topic for r in records).items():
            m.events.labels(topic, "consumed").inc(count)
        m.events.labels("all", "applied").inc(report.applied)
        m.events.labels("all", "duplicate").inc(report.duplicates)
        m.events.labels("all", "stale").inc(report.stale)
        m.events.labels("all", "dead_letter").inc(len(report.dead_letters))
        m.recomputes.inc(report.recomputed)
        m.bundles_changed.inc(len(report.changed))
        for tp, offset in next_offsets.items():
            self._next_offset[tp] = max(self._next_offset.get(tp, 0), offset)
        self.reports.append(report)
        del self.reports[:-100]


def next_offsets_of(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """Per partition, the offset to commit after `records`: one past the highest processed."""
    highest: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        if highest.get(key, -1) < r.offset:
            highest[key] = r.offset
    return {TopicPartition(t, p): offset + 1 for (t, p), offset in highest.items()}


def records_from_batch(batch: dict[TopicPartition, list[Any]]) -> list[Record]:
    """aiokafka's records (`ConsumerRecord`) as ours, in the batch's order."""
    out: list[Record] = []
    add = out.append
    for tp, messages in batch.items():
        topic, partition = tp.topic, tp.partition
        for m in messages:
            headers = tuple(m.headers) if m.headers else ()
            add(Record(topic, partition, m.offset, m.key, m.value, m.timestamp, headers))
    return out
