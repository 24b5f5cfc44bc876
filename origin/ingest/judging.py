"""Validating staged raw items, in this process or in worker processes.

`judge` is the pure part: raw items in, spool batches (encoded) and rejections out. `Judges`
runs it for one import. Validating every item of a new catalog is most of a first import's
staging CPU, while the other cores sit idle (Redis has little to do before the apply phase), so a
chunk with many items to validate goes to a worker process when one is free, and the rest are
judged in a thread of this process meanwhile. A re-import validates only the few items whose
fingerprint changed: it never starts a worker.

A worker that dies (killed, out of memory) loses nothing: its chunk, and every later one, is
judged in this process instead.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial

from origin.ingest.catalog_feed import RawChunk, RawItem
from origin.ingest.errors import Rejected
from origin.ingest.feed_fields import FeedItem, parse_item
from origin.ingest.report import Rejection, Unit
from origin.ingest.spool import BATCH, encode_batch

log = logging.getLogger(__name__)

POOL_MIN_ITEMS = 4000
"""Items to validate in one chunk before it is worth a worker process (sending a chunk costs
about a microsecond an item; validating one, ten or more)."""
DEFAULT_MAX_WORKERS = 4
"""`worker_count` never defaults to more: past a few, Redis (applying) is the limit, not judging."""
MAX_JUDGE_WORKERS = 32


@dataclass(frozen=True, slots=True)
class Judged:
    """A judged run of raw items: the valid ones as encoded spool batches, in feed order, and
    the rejected ones."""

    batches: list[bytes]
    count: int
    """Valid items in `batches`."""
    rejected: list[Rejection]


def judge(raws: RawChunk | list[RawItem], currency: str, now: float, unit: Unit) -> Judged:
    """Validate `raws` (`origin.ingest.feed_fields.parse_item`): each valid item with its
    fingerprint into a spool batch, each invalid one a `Rejection` naming its field."""
    batches: list[bytes] = []
    rejected: list[Rejection] = []
    valid: list[tuple[FeedItem, bytes]] = []
    count = 0
    for raw in raws.items() if isinstance(raws, RawChunk) else raws:
        try:
            item = parse_item(raw.fields, currency, normalized=raw.normalized, now=now)
        except Rejected as exc:
            rejected.append(Rejection(raw.position, unit, raw.sku, exc.field, exc.reason))
            continue
        valid.append((item, raw.digest))
        if len(valid) == BATCH:
            batches.append(encode_batch(valid))
            count += len(valid)
            valid.clear()
    if valid:
        batches.append(encode_batch(valid))
        count += len(valid)
    return Judged(batches, count, rejected)


def worker_count(asked: int | None) -> int:
    """The worker processes an import may start: `asked`, checked, or by default one per core
    beyond the first (this process reads the feed and judges too), at most
    `DEFAULT_MAX_WORKERS`."""
    if asked is not None:
        if not 0 <= asked <= MAX_JUDGE_WORKERS:
            raise ValueError(f"judge workers: expected 0 to {MAX_JUDGE_WORKERS}, got {asked}")
        return asked
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(DEFAULT_MAX_WORKERS, (cores or 1) - 1))


def _ready() -> None:
    """Nothing: a worker given it imports this module (and the parser) before its first chunk."""


class Judges:
    """Judge chunks for one import: in a worker process when the chunk is large enough and a
    worker is free, else in a thread here. `close` stops the workers."""

    def __init__(
        self,
        currency: str,
        now: float,
        unit: Unit,
        *,
        workers: int,
        pool_min: int | None = None,
    ) -> None:
        """`workers`: worker processes at most (0: judge here only; see `worker_count`);
        `pool_min`: items a chunk must hold to go to one (default `POOL_MIN_ITEMS`)."""
        self._judge = partial(judge, currency=currency, now=now, unit=unit)
        self._workers = workers
        self._pool_min = POOL_MIN_ITEMS if pool_min is None else pool_min
        self.sent = 0
        """Chunks judged by a worker process."""
        self.sent_items = 0
        """Items in those chunks."""
        self._pool: Executor | None = None
        """Started at the first large chunk (which is judged here meanwhile)."""
        self._busy = 0

    @property
    def in_flight(self) -> int:
        """Chunks worth judging at once: one per worker, and one here."""
        return self._workers + 1

    async def judge(self, raws: RawChunk | list[RawItem]) -> Judged:
        """Judge `raws` here or in a worker. The first large chunk is always judged here while
        the workers start: a feed of one chunk never waits for a worker to start."""
        large = len(raws) >= self._pool_min and self._workers > 0
        if large and self._pool is None:
            try:
                self._started().submit(_ready)  # start a worker meanwhile
            except OSError as exc:  # no process could be started (limits): judge here
                log.warning("a catalog import could not start worker processes: %s", exc)
                self._workers = 0
        elif large and self._busy < self._workers:
            self._busy += 1
            try:
                loop = asyncio.get_running_loop()
                judged = await loop.run_in_executor(self._started(), self._judge, raws)
                self.sent += 1
                self.sent_items += len(raws)
                return judged
            except (BrokenProcessPool, OSError) as exc:  # died, or could not be started
                log.warning(
                    "a catalog import's worker process failed (%s: %s): its items are judged "
                    "here instead",
                    type(exc).__name__,
                    exc,
                )
                self._workers = 0
            finally:
                self._busy -= 1
        return await asyncio.to_thread(self._judge, raws)

    def _started(self) -> Executor:
        if self._pool is None:
            # "spawn": this process has threads (reading, judging); forking it could copy a
            # lock another thread holds.
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def close(self) -> None:
        """Stop the workers: wait for them when they judged anything (a worker started for
        nothing exits on its own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=self.sent > 0, cancel_futures=True)
            self._pool = None
