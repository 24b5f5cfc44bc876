"""The product's invalidation consumer, wired like `invalidation.service`, with instruments.

- `MeteredPipeline` is the product's `InvalidationPipeline`, unchanged, adding up its batch
  reports and noting when the expected number of distinct records (by topic, partition and
  offset, so redeliveries after a rebalance do not count twice) has been processed.
- `RecordingQueue` is the product's `PurgeQueue`, remembering each peeked tag's `since_ms`
  (the producer timestamp of the oldest event the purge covers).
- `RecordingPurger` is a local fake purger (the `Purger` protocol): it accepts every purge at
  once and records, per tag, purge-issued time minus `since_ms`: event -> purge latency.
- `ConsumerRun` runs `InvalidationConsumer` (and optionally one `PurgeWorker` with the fake
  purger) on this event loop until stopped.

It must never alter what the product code decides: instruments only observe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter

from redis.asyncio import Redis

from bench.errors import BenchRunError
from bench.kafka_tools import SESSION_TIMEOUT_MS, AssignmentClock
from fragments.slots import load_slots
from invalidation.apply import EventApplier
from invalidation.consumer import ConsumerConfig, InvalidationConsumer
from invalidation.metrics import InvalidationMetrics
from invalidation.pipeline import AppliedBatch, BatchReport, InvalidationPipeline
from invalidation.purge_worker import PurgeWorker
from invalidation.records import Record
from invalidation.service import freeze_startup_heap
from invalidation.settings import DEFAULT_MAX_IN_FLIGHT
from origin.core.builder import BundleBuilder
from origin.core.purge_queue import PurgeMode, PurgeQueue, QueueHead
from origin.core.recompute import Recomputer
from origin.core.store import Store

BENCH_PURGER = "bench"
PURGE_TAGS_PER_REQUEST = 500
ASSIGNMENT_TIMEOUT_S = 30.0


@dataclass(slots=True)
class PipelineTotals:
    """Batch reports added up."""

    batches: int = 0
    records: int = 0
    """Records processed, counting a redelivered record each time."""
    unique_records: int = 0
    """Distinct (topic, partition, offset) processed."""
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    dead_letters: int = 0
    collapsed: int = 0
    """SKU events the window collapse did not send to Redis."""
    recomputed: int = 0
    changed: int = 0
    purges_enqueued: int = 0
    busy_seconds: float = 0.0
    """Time spent applying and propagating windows (they overlap: this can exceed the wall time)."""
    dead_letter_reasons: list[str] = field(default_factory=list)

    @property
    def redelivered(self) -> int:
        """Records processed more than once (after a rebalance: at-least-once delivery)."""
        return self.records - self.unique_records

    def add(self, report: BatchReport) -> None:
        self.batches += 1
        self.records += report.records
        self.applied += report.applied
        self.duplicates += report.duplicates
        self.stale += report.stale
        self.dead_letters += len(report.dead_letters)
        self.collapsed += report.collapsed
        self.dead_letter_reasons += [d.reason for d in report.dead_letters[:3]]
        self.recomputed += report.recomputed
        self.changed += len(report.changed)
        self.purges_enqueued += report.purges_enqueued
        self.busy_seconds += report.seconds


class DistinctRecords:
    """Counts records never processed before, by (topic, partition, offset).

    A partition is consumed in offset order and only ever rewinds (after a rebalance) to offsets
    it already processed, so a record is new exactly when its offset is above every offset of its
    partition processed before it: a high-water mark per partition, cheaper per record than a set
    of every record (the benchmark runs it inside the throughput it measures).
    """

    def __init__(self) -> None:
        self._highest: dict[tuple[str, int], int] = {}

    def new_in(self, records: Sequence[Record]) -> int:
        """How many of `records`, in processing order, were never processed before."""
        new = 0
        for partition, run in groupby(records, key=itemgetter(0, 1)):
            highest = self._highest.get(partition, -1)
            for record in run:
                if record.offset > highest:
                    new += 1
                    highest = record.offset
            self._highest[partition] = highest
        return new


class MeteredPipeline(InvalidationPipeline):
    """The product pipeline, with its batch reports added up."""

    def __init__(
        self,
        applier: EventApplier,
        recomputer: Recomputer,
        purgers: Sequence[str],
        *,
        suppress_unchanged: bool,
        expected_records: int,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            applier,
            recomputer,
            purgers,
            suppress_unchanged=suppress_unchanged,
            on_enqueue=on_enqueue,
        )
        self.totals = PipelineTotals()
        self._distinct = DistinctRecords()
        self.expected_records = expected_records
        self.all_processed = asyncio.Event()
        self.finished_at: float | None = None

    def expect(self, records: int) -> None:
        """Change the number of records to wait for (a paced source knows it only at the end)."""
        self.expected_records = records
        self._check_done()

    async def propagate(self, applied: AppliedBatch) -> BatchReport:
        report = await super().propagate(applied)
        self.totals.add(report)
        self.totals.unique_records += self._distinct.new_in(applied.batch.records)
        self._check_done()
        return report

    def _check_done(self) -> None:
        if self.totals.unique_records >= self.expected_records and self.finished_at is None:
            self.finished_at = time.perf_counter()
            self.all_processed.set()


class RecordingQueue(PurgeQueue):
    """The product's purge queue, remembering the `since_ms` of every tag it hands out."""

    def __init__(self, redis: Redis, purger: str, partitions: Sequence[str]) -> None:
        super().__init__(redis, purger, partitions)
        self.since_ms: dict[str, int] = {}

    async def head(self, limit: int) -> QueueHead:
        head = await super().head(limit)
        for item in head.pending:
            self.since_ms[item.tag] = item.since_ms
        return head


class RecordingPurger:
    """A fake CDN that accepts every purge and records event -> purge latency per tag."""

    name = BENCH_PURGER
    max_tags_per_request = PURGE_TAGS_PER_REQUEST

    def __init__(self) -> None:
        self.queue: RecordingQueue | None = None
        self.latencies_ms: list[float] = []
        self.requests = 0
        self.tags = 0

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        now_ms = time.time() * 1000.0
        if self.queue is None:
            raise BenchRunError("RecordingPurger used before its queue was attached")
        self.requests += 1
        self.tags += len(tags)
        for tag in tags:
            since = self.queue.since_ms.get(tag)
            if since is None:
                raise BenchRunError(f"purge of {tag!r} that the queue never handed out")
            if since:
                self.latencies_ms.append(now_ms - since)


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One consumer-group member of the benchmark."""

    bootstrap: str
    group_id: str
    suppress_unchanged: bool = True
    enqueue_purges: bool = False
    """Name the fake purger to the pipeline, so changed bundles enqueue purges for it."""
    purge_worker: bool = False
    """Run a purge worker draining those purges through the fake purger."""
    window_ms: int = 100
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """The product's default (`origin.settings`)."""


class ConsumerRun:
    """The product consumer (and optionally a purge worker) running on this event loop."""

    def __init__(self, config: RunConfig, redis: Redis, expected_records: int) -> None:
        self.config = config
        self.redis = redis
        self.expected_records = expected_records
        self.purger = RecordingPurger()
        self.metrics = InvalidationMetrics.create()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pipeline: MeteredPipeline | None = None
        self.consumer: InvalidationConsumer | None = None
        self.queue: RecordingQueue | None = None
        self.assigned_at: float | None = None

    async def start(self) -> float:
        """Start, wait for the partition assignment and return when it came (perf_counter)."""
        store = Store(self.redis, timeout=5.0)
        segments = await store.segments()
        if not segments:
            raise BenchRunError("the Redis is not seeded (no segments)")
        # As invalidation.service builds it: following the stored segments and the published
        # configuration (each window re-reads both).
        recomputer = Recomputer(store, BundleBuilder(load_slots()), segments, follows_segments=True)
        if self.config.purge_worker and not self.config.enqueue_purges:
            raise BenchRunError("a purge worker needs enqueue_purges=True")
        purgers = (BENCH_PURGER,) if self.config.enqueue_purges else ()
        wake = asyncio.Event()  # wired as invalidation.service wires it
        self.pipeline = MeteredPipeline(
            EventApplier(self.redis),
            recomputer,
            purgers,
            suppress_unchanged=self.config.suppress_unchanged,
            expected_records=self.expected_records,
            on_enqueue=wake.set,
        )
        self.consumer = InvalidationConsumer(
            ConsumerConfig(
                bootstrap=self.config.bootstrap,
                group_id=self.config.group_id,
                window_ms=self.config.window_ms,
                max_in_flight=self.config.max_in_flight,
                client_id=f"bench-{self.config.group_id}",
                session_timeout_ms=SESSION_TIMEOUT_MS,
            ),
            self.pipeline,
            self.metrics,
        )
        await self.consumer.start()
        freeze_startup_heap()  # as invalidation.service does before it consumes
        self._tasks.append(asyncio.create_task(self.consumer.run(self._stop)))
        if self.config.purge_worker:
            self.queue = RecordingQueue(self.redis, BENCH_PURGER, list(recomputer.partitions))
            self.purger.queue = self.queue
            worker = PurgeWorker(self.redis, self.purger, self.queue, self.metrics, wake=wake)
            self._tasks.append(asyncio.create_task(worker.run(self._stop)))
        self.assigned_at = await AssignmentClock(self.consumer.consumer).watch(ASSIGNMENT_TIMEOUT_S)
        return self.assigned_at

    async def wait_processed(self, timeout: float) -> float:  # noqa: ASYNC109
        """Wait until the expected records were processed; return when (perf_counter)."""
        pipeline = self._pipeline()
        try:
            async with asyncio.timeout(timeout):
                await pipeline.all_processed.wait()
        except TimeoutError:
            raise BenchRunError(
                f"group {self.config.group_id}: {pipeline.totals.unique_records}/"
                f"{self.expected_records} records processed in {timeout:g} s"
            ) from None
        self._check_tasks()
        assert pipeline.finished_at is not None
        return pipeline.finished_at

    async def wait_purges_drained(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the fake purger's queue is empty."""
        if self.queue is None:
            raise BenchRunError("no purge worker in this run")
        deadline = time.perf_counter() + timeout
        while (depth := await self.queue.depth()) > 0:
            self._check_tasks()
            if time.perf_counter() > deadline:
                raise BenchRunError(f"{depth} purges still queued after {timeout:g} s")
            await asyncio.sleep(0.05)

    @property
    def totals(self) -> PipelineTotals:
        return self._pipeline().totals

    def expect(self, records: int) -> None:
        self._pipeline().expect(records)

    async def stop(self) -> None:
        self._stop.set()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.consumer is not None:
            await self.consumer.stop()
        for result in results:
            if isinstance(result, BaseException):
                raise BenchRunError(f"consumer task failed: {result!r}") from result

    def _check_tasks(self) -> None:
        for task in self._tasks:
            if task.done() and task.exception() is not None:
                raise BenchRunError(f"consumer task failed: {task.exception()!r}")

    def _pipeline(self) -> MeteredPipeline:
        if self.pipeline is None:
            raise BenchRunError("ConsumerRun not started")
        return self.pipeline
