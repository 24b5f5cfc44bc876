"""Drain one purger's queues: most urgent first, within its rate limit, retrying failures.

One worker per purger holds a Redis lease, so with several consumer instances exactly one of
them talks to each CDN and the token bucket is global. Each round peeks up to one request's
worth of tags (sell-outs first); if the bucket is empty the round is deferred and the queue keeps
merging new changes into the same tags. Tags leave the queue only after the purge was accepted;
failures back off exponentially (with jitter) and keep the tags. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid

from redis.asyncio import Redis

from fragments import keys
from invalidation.errors import PurgeFailed
from invalidation.metrics import InvalidationMetrics, purge_status_class
from invalidation.purge_queue import PurgeQueue
from invalidation.purgers.base import Purger
from invalidation.ratelimit import TokenBucket
from origin.errors import StoreUnavailable

log = logging.getLogger("shelfedge.purge")

LEASE_MS = 5000
IDLE_POLL_SECONDS = 0.01
MAX_IDLE_POLL_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 30.0

_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


class PurgeWorker:
    """Drains `queue` through `purger`."""

    def __init__(
        self,
        redis: Redis,
        purger: Purger,
        queue: PurgeQueue,
        metrics: InvalidationMetrics,
        bucket: TokenBucket | None = None,
        *,
        wake: asyncio.Event | None = None,
    ) -> None:
        """`wake` is set by the pipeline when it enqueued purges: the worker then skips the
        rest of its idle wait (purges go out right after the window commits)."""
        self.redis = redis
        self.purger = purger
        self.queue = queue
        self.metrics = metrics
        self.bucket = bucket
        self.wake = wake or asyncio.Event()
        self.instance = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        idle = IDLE_POLL_SECONDS
        while not stop.is_set():
            try:
                did_work = await self.round()
            except StoreUnavailable as exc:
                log.warning("purge worker %s: %s", self.purger.name, exc)
                did_work = False
            idle = IDLE_POLL_SECONDS if did_work else min(idle * 1.5, MAX_IDLE_POLL_SECONDS)
            if not did_work:
                await _wait_for_work(self.wake, stop, idle)

    async def round(self) -> bool:
        """One purge request if there is work, a lease and a token; True if one was sent."""
        lease = await self._renew(
            keys=[keys.purge_lease_key(self.purger.name)], args=[self.instance, LEASE_MS]
        )
        if not int(lease):
            return False
        pending = await self.queue.peek(self.purger.max_tags_per_request)
        self.metrics.purge_queue_depth.labels(self.purger.name).set(await self.queue.depth())
        if not pending:
            return False
        if self.bucket is not None:
            wait = self.bucket.wait_time(time.monotonic())
            if wait > 0:
                self.metrics.purge_deferred.labels(self.purger.name).inc()
                await asyncio.sleep(min(wait, 1.0))
                return True
            self.bucket.take(time.monotonic())
        tags = [p.tag for p in pending]
        try:
            await self.purger.purge(tags)
        except PurgeFailed as exc:
            self._failures += 1
            outcome = "retry" if exc.retriable else "rejected"
            self.metrics.purge_requests.labels(self.purger.name, outcome).inc()
            self.metrics.purge_failures.labels(
                self.purger.name, purge_status_class(exc.status)
            ).inc()
            backoff = min(MAX_BACKOFF_SECONDS, 0.1 * 2 ** min(self._failures, 10))
            log.error(
                "purge via %s failed (%s, %d tags kept queued; next try in %.1fs): %s",
                self.purger.name, outcome, len(tags), backoff, exc,
            )  # fmt: skip
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            return True
        self._failures = 0
        now_ms = time.time() * 1000
        self.metrics.purge_requests.labels(self.purger.name, "ok").inc()
        self.metrics.tags_purged.labels(self.purger.name).inc(len(tags))
        for item in pending:
            if item.since_ms:
                self.metrics.event_to_purge_seconds.labels(self.purger.name).observe(
                    max(0.0, (now_ms - item.since_ms) / 1000)
                )
        await self.queue.ack(pending)
        return True


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
