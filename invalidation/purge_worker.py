"""Drain one purger's queues: most urgent first, within its rate limit; `retriable` decides what
a failure does.

One worker per purger holds a Redis lease, so with several consumer instances exactly one of
them talks to each CDN and its budget (`PurgeBudget`: requests, and tags where the API counts
them) is global. Each round sends at most one request: up to one request's worth of tags
(sell-outs first), all of one `PurgeMode` (hard tags sort before soft ones, so evictions are never
held back by stale-marking), and no more tags than the budget affords now; if it affords none
the round is deferred and the queue keeps merging new changes into the same tags. Tags leave the
queue only after the purge was accepted, or when parked. On a `PurgeFailed`, in this order:

- ``retriable`` (429, 5xx, timeouts, connection errors): the same tags are retried after a
  bounded exponential backoff (jittered, at most `MAX_BACKOFF_SECONDS`), never sooner than the
  API's ``Retry-After`` (capped at `MAX_RETRY_AFTER_SECONDS`). The lease is kept while waiting.
- `PurgerUnusable` (401/403 credential, 404/405 endpoint): the worker stops, loudly (error log
  naming the purger and the status, ``shelfedge_purger_stopped`` = 1), releases its lease and
  touches nothing: the tags stay queued until the configuration is fixed and it is restarted.
- any other refusal (`PurgeRejected`, a 4xx about the request's tags): the batch is split in
  halves, each sent in its own later round (one token each, counted in
  ``shelfedge_purge_split_requests``), until the tags the API refuses on their own are isolated
  and parked (`purge_queue.park`: metric, structured log line, the purger's parked list). The
  rest is purged and acknowledged as usual. A split of n tags with k refused costs about
  2·k·log2(n) requests; new tags wait until it is done.

Nothing is dropped silently: every tag is purged, still queued, or parked where an operator can
list and re-drive it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Sequence

from fragments.tags import key_of_bundle_tag
from invalidation.errors import PurgeFailed, PurgerUnusable, PurgeUnavailable
from invalidation.metrics import InvalidationMetrics, purge_status_class
from invalidation.purgers.base import Purger
from invalidation.ratelimit import PurgeBudget
from invalidation.tracing import PurgeTraces
from origin.core import keys
from origin.core.purge_queue import ParkedPurge, PendingPurge, PurgeQueue, park
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.errors import StoreUnavailable

log = logging.getLogger("shelfedge.purge")

LEASE_MS = 5000
IDLE_POLL_SECONDS = 0.01
MAX_IDLE_POLL_SECONDS = 0.05
BASE_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 300.0
"""A longer ``Retry-After`` is not believed: the worker tries again after this long."""
MAX_DETAIL_CHARS = 200

_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def backoff_seconds(failures: int, retry_after: float | None, jitter: float) -> float:
    """How long to wait before retrying after `failures` transient failures in a row.

    Exponential from `BASE_BACKOFF_SECONDS`, capped at `MAX_BACKOFF_SECONDS`, scaled by `jitter`
    (0.5..1.0); never less than the API's `retry_after` (itself capped at
    `MAX_RETRY_AFTER_SECONDS`).
    """
    exponential = min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2.0 ** min(failures, 10))
    wait = exponential * jitter
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_RETRY_AFTER_SECONDS))
    return wait


def one_mode(batch: Sequence[PendingPurge]) -> list[PendingPurge]:
    """The leading tags of `batch` (most urgent first) that share the first one's mode: one
    request purges all hard or all soft."""
    if not batch:
        return []
    mode = batch[0].mode
    out: list[PendingPurge] = []
    for item in batch:
        if item.mode is not mode:
            break
        out.append(item)
    return out


def halves(batch: Sequence[PendingPurge]) -> tuple[list[PendingPurge], list[PendingPurge]]:
    """Split a refused batch of two or more tags in two non-empty halves."""
    middle = len(batch) // 2
    return list(batch[:middle]), list(batch[middle:])


class PurgeWorker:
    """Drains `queue` through `purger`."""

    def __init__(
        self,
        redis: RedisLike,
        purger: Purger,
        queue: PurgeQueue,
        metrics: InvalidationMetrics,
        budget: PurgeBudget | None = None,
        *,
        wake: asyncio.Event | None = None,
        traces: PurgeTraces | None = None,
    ) -> None:
        """`wake` is set by the pipeline when it enqueued purges: the worker then skips the
        rest of its idle wait (purges go out right after the window commits)."""
        self.redis = redis
        self.purger = purger
        self.queue = queue
        self.metrics = metrics
        self.budget = budget
        self.wake = wake or asyncio.Event()
        self.traces = traces if traces is not None else PurgeTraces()
        """The spans of the windows that queued tags (a purge span continues their trace)."""
        self.instance = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._failures = 0
        self._splitting: list[list[PendingPurge]] = []
        """Parts of a refused batch still to send, the next one last."""
        self.stopped: PurgerUnusable | None = None
        """Why this worker stopped for good (its API refused the purger itself), or None."""
        metrics.purger_stopped.labels(purger.name).set(0)

    async def run(self, stop: asyncio.Event) -> None:
        """Run rounds until `stop` is set or the purger is found unusable."""
        idle = IDLE_POLL_SECONDS
        while not stop.is_set() and self.stopped is None:
            try:
                did_work = await self.round(stop)
            except StoreUnavailable as exc:
                log.warning("purge worker %s: %s", self.purger.name, exc)
                did_work = False
            idle = IDLE_POLL_SECONDS if did_work else min(idle * 1.5, MAX_IDLE_POLL_SECONDS)
            if not did_work and self.stopped is None:
                await _wait_for_work(self.wake, stop, idle)

    async def round(self, stop: asyncio.Event | None = None) -> bool:
        """One purge request if there is work, a lease and a token; True if one was sent (or
        the round was deferred by the bucket). A transient failure waits out its backoff here
        (keeping the lease; `stop` cuts the wait short)."""
        if self.stopped is not None:
            return False
        if not await self._hold_lease():
            self._splitting.clear()  # another instance drains now; it starts afresh
            return False
        splitting = bool(self._splitting)
        if splitting:
            pending = self._splitting[-1]
            depth = await self.queue.depth()
        else:
            head = await self.queue.head(self.max_tags)
            pending, depth = head.pending, head.depth
        self.metrics.purge_queue_depth.labels(self.purger.name).set(depth)
        pending = one_mode(pending)
        if not pending:
            return False
        if self.budget is not None:
            now = time.monotonic()
            affordable = self.budget.affordable(now, len(pending))
            if affordable < 1 or (splitting and affordable < len(pending)):
                self.metrics.purge_deferred.labels(self.purger.name).inc()
                await asyncio.sleep(min(max(self.budget.wait_time(now), 0.001), 1.0))
                return True
            pending = pending[:affordable]
            self.budget.spend(now, len(pending))
        if splitting:
            self._splitting.pop()
            self.metrics.purge_split_requests.labels(self.purger.name).inc()
        tags = [p.tag for p in pending]
        try:
            with self.traces.purge_span(self.purger.name, tags):
                await self.purger.purge(tags, pending[0].mode)
        except PurgeFailed as exc:
            await self._failed(pending, exc, stop, part_of_split=splitting)
            return True
        self._failures = 0
        await self._purged(pending)
        return True

    @property
    def max_tags(self) -> int:
        return self.purger.max_tags_per_request

    async def _purged(self, pending: Sequence[PendingPurge]) -> None:
        now_ms = time.time() * 1000
        name = self.purger.name
        self.metrics.purge_requests.labels(name, "ok").inc()
        self.metrics.tags_purged.labels(name).inc(len(pending))
        for item in pending:
            if item.since_ms:
                self.metrics.event_to_purge_seconds.labels(name).observe(
                    max(0.0, (now_ms - item.since_ms) / 1000)
                )
        await self.queue.ack(pending)

    async def _failed(
        self,
        pending: list[PendingPurge],
        exc: PurgeFailed,
        stop: asyncio.Event | None,
        *,
        part_of_split: bool,
    ) -> None:
        """Decide what a failed request means: `retriable` first, then which refusal."""
        name = self.purger.name
        self.metrics.purge_failures.labels(name, purge_status_class(exc.status)).inc()
        if exc.retriable:
            self._failures += 1
            self.metrics.purge_requests.labels(name, "retry").inc()
            retry_after = exc.retry_after if isinstance(exc, PurgeUnavailable) else None
            delay = backoff_seconds(self._failures, retry_after, random.uniform(0.5, 1.0))
            if part_of_split:
                self._splitting.append(pending)  # resend exactly this part; the split goes on
            log.warning(
                "purge via %s failed (%d tags kept queued; next try in %.1fs): %s",
                name, len(pending), delay, exc,
            )  # fmt: skip
            await self._pause(delay, stop)
            return
        self._failures = 0
        if isinstance(exc, PurgerUnusable):
            await self._stop(exc)
            return
        self.metrics.purge_requests.labels(name, "rejected").inc()
        if len(pending) > 1:
            first, second = halves(pending)
            self._splitting += [second, first]
            log.warning(
                "purge via %s rejected (%s); splitting %d tags to find the refused ones: %s",
                name, exc.reason, len(pending), exc,
            )  # fmt: skip
            return
        await self._park(pending[0], exc)

    async def _park(self, item: PendingPurge, exc: PurgeFailed) -> None:
        record = ParkedPurge(
            tag=item.tag,
            partition=item.partition,
            score=item.score,
            reason=exc.reason,
            status=exc.status,
            detail=exc.detail[:MAX_DETAIL_CHARS],
            parked_at_ms=int(time.time() * 1000),
        )
        await park(self.redis, self.purger.name, [record], self.queue.timeout)
        bundle = key_of_bundle_tag(record.tag)
        self.metrics.purges_parked.labels(self.purger.name, record.reason).inc()
        log.warning(
            "purge parked: purger=%s tag=%s reason=%s status=%s partition=%s detail=%s",
            self.purger.name, record.tag, record.reason, record.status, record.partition,
            record.detail,
            extra={
                "event": "purge_parked",
                "purger": self.purger.name,
                "tag": record.tag,
                "bundle_key": bundle.cache_key if bundle is not None else None,
                "reason": record.reason,
                "status": record.status,
                "partition": record.partition,
            },
        )  # fmt: skip

    async def _stop(self, exc: PurgerUnusable) -> None:
        name = self.purger.name
        self.stopped = exc
        self._splitting.clear()
        self.metrics.purge_requests.labels(name, "stopped").inc()
        self.metrics.purger_stopped.labels(name).set(1)
        depth: int | str = "?"
        try:
            depth = await self.queue.depth()
            await bounded(
                self._release(keys=[keys.purge_lease_key(name)], args=[self.instance]),
                self.queue.timeout,
                "release the purge lease",
            )
        except StoreUnavailable as store_exc:
            log.warning("purge worker %s: could not release its lease: %s", name, store_exc)
        log.error(
            "purger %s STOPPED: its API answered HTTP %s (%s); %s queued tags are kept and"
            " nothing more is sent through it until its configuration is fixed and the consumer"
            " restarted: %s",
            name, exc.status, exc.reason, depth, exc.detail,
            extra={"event": "purger_stopped", "purger": name, "status": exc.status},
        )  # fmt: skip

    async def _hold_lease(self) -> bool:
        held = await bounded(
            self._renew(
                keys=[keys.purge_lease_key(self.purger.name)], args=[self.instance, LEASE_MS]
            ),
            self.queue.timeout,
            "renew the purge lease",
        )
        return bool(int(held))

    async def _pause(self, seconds: float, stop: asyncio.Event | None) -> None:
        """Wait `seconds` (less if `stop` is set), renewing the lease so no other instance
        hammers the API meanwhile."""
        deadline = time.monotonic() + seconds
        step = LEASE_MS / 1000 / 3
        while (left := deadline - time.monotonic()) > 0:
            if stop is None:
                await asyncio.sleep(min(left, step))
            else:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(left, step))
                    return
                except TimeoutError:
                    pass
            if not await self._hold_lease():
                self._splitting.clear()
                return


async def _wait_for_work(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Return when `wake` or `stop` is set, or after `seconds` (a poll: other instances enqueue
    too); clears `wake`."""
    waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()
