"""The context processor: a consumer-group member folding ``clickstream.v1`` into profiles.

Loop: fetch a batch, decode (msgspec, `origin.context.click_wire`; undecodable records are
counted and skipped, logged by their coordinates only), group the events by visitor, fold each
visitor's events into their profile and decide their segment
(`origin.context.store.ContextStore.fold_window`: the whole window's profiles read in one
pipeline, written in another with a compare-and-set per visitor), add the co-views of the new
product views to the learned item-to-item lists (`origin.context.learned_store`: summed per
pair, one script call per group of anchors) and then commit the batch's offsets, both in the
background while the next window is folded (one such task in flight at a time). Offsets are
committed only after every fold is durable; a redelivered batch changes nothing (the profile
update is a join and only views new to the profile make co-views). Events without consent are
dropped before anything is written. Scale out with more ``shelfedge context`` processes in the
same group (the topic is keyed by visitor).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiokafka import TopicPartition

from fragments import topics
from fragments.clickstream import ClickEvent, ClickInvalid
from origin.context.click_wire import decode_click_fast
from origin.context.learned import CoView
from origin.context.learned_store import LearnedLists
from origin.context.store import ContextStore
from origin.core.kafka_security import KafkaSecurity
from origin.events.group_member import Offsets, commit_logged, decode_batch, group_consumer

log = logging.getLogger("shelfedge.context")
MAX_BATCH = 2000


@dataclass(slots=True)
class ProcessorStats:
    """Running totals, for logs and tests."""

    records: int = 0
    folded: int = 0
    without_consent: int = 0
    undecodable: int = 0
    visitors: int = 0
    batches: int = 0
    coviews: int = 0
    lists_changed: int = 0


class ContextProcessor:
    """Consumes the clickstream and keeps profiles and segments until stopped."""

    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        store: ContextStore,
        *,
        session_timeout_ms: int = 10_000,
        client_id: str = "shelfedge-context",
        security: KafkaSecurity | None = None,
    ) -> None:
        self.store = store
        self.learned = LearnedLists(store.redis, store.timeout)
        self.stats = ProcessorStats()
        self._commit: asyncio.Task[None] | None = None
        self.consumer = group_consumer(
            (topics.CLICKSTREAM.name,),
            bootstrap,
            group_id,
            client_id=client_id,
            max_batch=MAX_BATCH,
            session_timeout_ms=session_timeout_ms,
            security=security,
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        try:
            await self._settle_commit()
        finally:
            await self.consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self.window()
            if batch:
                await self.process(batch)

    async def window(self) -> dict[TopicPartition, list[Any]]:
        """Up to `MAX_BATCH` records: what the first fetch brings (waiting up to 200 ms), topped
        up with whatever else is already fetched (a larger window shares its round trips)."""
        batch: dict[TopicPartition, list[Any]] = await self.consumer.getmany(
            timeout_ms=200, max_records=MAX_BATCH
        )
        count = sum(len(records) for records in batch.values())
        while 0 < count < MAX_BATCH:
            more = await self.consumer.getmany(timeout_ms=0, max_records=MAX_BATCH - count)
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    async def process(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Fold one fetched batch and commit it."""
        now = time.time()
        decoded = decode_batch(
            batch, partial(decode_click_fast, now=now), ClickInvalid, _field, log, "click"
        )
        self.stats.records += decoded.records
        self.stats.undecodable += decoded.undecodable
        by_visitor: dict[str, list[ClickEvent]] = defaultdict(list)
        for event in decoded.values:
            if event.consent:
                by_visitor[event.visitor].append(event)
            else:
                self.stats.without_consent += 1
        coviews: list[CoView] = []
        if by_visitor:
            rules = await self.store.current_rules()
            _, coviews = await self.store.fold_window(by_visitor, rules, now)
        # The profiles are durable; the co-views are learned and then the offsets committed
        # while the next window is fetched and folded (one such task in flight at a time, so
        # offsets are committed in order, each after its window's co-views).
        await self._settle_commit()
        self._commit = asyncio.create_task(
            self._learn_and_commit(by_visitor, coviews, decoded.offsets)
        )

    async def _learn_and_commit(
        self,
        by_visitor: dict[str, list[ClickEvent]],
        coviews: list[CoView],
        offsets: Offsets,
    ) -> None:
        if by_visitor:
            self.stats.coviews += len(coviews)
            self.stats.lists_changed += len(await self.learned.add(coviews))
            self.stats.visitors += len(by_visitor)
            self.stats.folded += sum(len(events) for events in by_visitor.values())
        self.stats.batches += 1
        await commit_logged(self.consumer, offsets, log, "folding")

    async def _settle_commit(self) -> None:
        """Wait for the previous window's co-views and commit: a failure to learn is raised
        (nothing of that window is committed; a failed commit was logged)."""
        pending, self._commit = self._commit, None
        if pending is not None:
            await pending


def _field(exc: ClickInvalid) -> str:
    return exc.field
