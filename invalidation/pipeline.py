"""The invalidation pipeline for one batch of records, independent of Kafka.

validate -> collapse (one state change per key) -> apply (dedupe, version gate, atomic) ->
impacted bundles -> recompute each once -> content changed? -> enqueue its purge atomically with
the write.

Before anything is packed for Redis, the window's SKU events are collapsed
(`invalidation.collapse`): per (SKU, location) and per SKU price only the highest version is
sent, content events that can still apply are sent in order, in-window copies are dropped. The
result is the state one-by-one application leaves, so Redis work grows with the distinct keys of
a window; every record is still counted, and dead-lettered with its own coordinates when its SKU
is unknown.

A batch is the coalescing window: however many events touch a bundle in it, the bundle is
recomputed once and purged at most once. The caller commits the batch's offsets only after
`process` (or `propagate`) returns, when every effect is durable, and produces `dead_letters`
first.

`process` is two stages, which the consumer runs apart so that one window's apply (Lua in Redis)
overlaps the previous window's propagation (mostly Python): `apply_events`, then `propagate`.
Propagation reads current state, so a window propagated after the next one was applied may
already show the next one's changes; the next window then finds those bundles unchanged and
purges nothing more (a SKU sold out by then leaves its bundles with a sell-out's priority
whichever window removes it). Windows propagate one at a time, in order.

Count-only stock noise (no stock-state change) skips impact analysis entirely: nothing a shopper
sees, nor any score, depends on the count. A price move that crosses no segment's price band
moves no score (`origin.core.scoring.price_change_moves_scores`): its SKU's bundles are
recomputed but the SKU is not rescored. Redelivered events (duplicate or stale) are
reconciled: their SKU's bundles are recomputed from current state, which is a no-op unless a
crash interrupted the first delivery.

List events (``lists.v1``) carry whole imported recommendation lists: after the window's SKU
events propagate, its lists are stored version-gated (a duplicate or reordered event is stale and
changes nothing) and the bundles built from them are recomputed through the same content-hash
rule (`origin.core.list_import.apply_lists`); a list for a segment that is not configured is
dead-lettered.

Each purge obligation says how to purge (`origin.core.purge_queue.PurgeMode`, by priority): a
bundle that shows a SKU whose stock state or price fields changed, or that is reconciled after a
redelivery, is evicted (a sell-out first); a bundle that only gains a SKU (it enters by a new
score) or changes because a list moved is marked stale, since everything it shows is still
true, only not the latest order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fragments import topics
from fragments.cards import stock_state
from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from invalidation.apply import EventApplier, SkuResult
from invalidation.collapse import collapse
from invalidation.events import Event, ListEvent
from invalidation.records import DeadLetter, DecodedRecords, Record
from invalidation.tracing import PurgeTraces, child_span
from origin.core.list_import import ListImportReport, apply_lists, segment_rejection
from origin.core.purge_queue import (
    PRIORITY_HARD,
    PRIORITY_SELL_OUT,
    PRIORITY_SOFT,
    PurgeRequest,
)
from origin.core.recompute import Recomputer
from origin.core.redis_replication import wait_for_replicas


@dataclass(slots=True)
class BatchReport:
    """What one batch did (metrics and tests read it)."""

    records: int = 0
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    recomputed: int = 0
    changed: list[FragmentKey] = field(default_factory=list)
    purges_enqueued: int = 0
    sold_out_skus: set[str] = field(default_factory=set)
    collapsed: int = 0
    """SKU events the window's collapse did not send to Redis (superseded or duplicates; still
    counted as applied, duplicate or stale as one-by-one application would count them)."""
    seconds: float = 0.0
    """Time spent applying and propagating (not waiting between the stages)."""


@dataclass(frozen=True, slots=True)
class AppliedBatch:
    """A batch whose events are applied, waiting for `InvalidationPipeline.propagate`."""

    batch: DecodedRecords
    results: list[SkuResult]
    """What applying did, per SKU."""
    seconds: float
    """How long applying took."""
    products: DecodedRecords | None = None
    """The batch's records of SKU events (what `results` index), when it also holds lists."""
    lists: DecodedRecords | None = None
    """The batch's records of list events, propagated after the SKU events."""


@dataclass(slots=True)
class _Impact:
    priority: int = PRIORITY_HARD
    at_ms: int = 2**62
    rescore: bool = True
    """The SKU's scores may have moved (or a redelivery must reconcile them)."""


class InvalidationPipeline:
    """Processes batches against one store."""

    def __init__(
        self,
        applier: EventApplier,
        recomputer: Recomputer,
        purgers: Sequence[str],
        *,
        suppress_unchanged: bool = True,
        on_enqueue: Callable[[], None] | None = None,
        traces: PurgeTraces | None = None,
        min_replicas: int = 0,
        replica_timeout: float = 5.0,
    ) -> None:
        self.applier = applier
        self.recomputer = recomputer
        self.purgers = tuple(purgers)
        self.suppress_unchanged = suppress_unchanged
        """False purges every bundle showing a touched SKU (benchmark baseline)."""
        self.on_enqueue = on_enqueue
        """Called after a batch enqueued purges (wakes the purge workers)."""
        self.traces = traces
        """Where a traced window leaves its span for the purge workers (None: nowhere)."""
        self.min_replicas = min_replicas
        """`propagate` returns only once the batch's writes are on this many replicas."""
        self.replica_timeout = replica_timeout

    async def process(self, records: Sequence[Record]) -> BatchReport:
        return await self.process_decoded(DecodedRecords.of(records))

    async def process_decoded(self, batch: DecodedRecords) -> BatchReport:
        """Process records already decoded (the consumer decodes them as they arrive)."""
        return await self.propagate(await self.apply_events(batch))

    async def apply_events(self, batch: DecodedRecords) -> AppliedBatch:
        """Stage one: apply the batch's events to catalog state (deduplicated, version-gated)."""
        started = time.perf_counter()
        products: DecodedRecords | None = None
        lists: DecodedRecords | None = None
        if any(r.topic == topics.LISTS.name for r in batch.records):
            products = batch.keeping(lambda r: r.topic != topics.LISTS.name)
            lists = batch.keeping(lambda r: r.topic == topics.LISTS.name)
        events = (products or batch).events
        sku_events: list[Event] = [e for e in events if not isinstance(e, ListEvent)]
        with child_span("shelfedge.apply"):
            results = await self.applier.apply_by_sku(sku_events, collapse(sku_events))
        return AppliedBatch(batch, results, time.perf_counter() - started, products, lists)

    async def propagate(self, applied: AppliedBatch) -> BatchReport:
        """Stage two: impacted bundles, recomputes, purges enqueued with their writes."""
        with child_span("shelfedge.propagate"):
            return await self._propagate(applied)

    async def _propagate(self, applied: AppliedBatch) -> BatchReport:
        started = time.perf_counter()
        batch = applied.batch
        report = BatchReport(records=len(batch), dead_letters=list(batch.dead_letters))
        kept = (applied.products or batch).valid
        to_reconcile: dict[str, _Impact] = {}
        count_only: dict[str, _Impact] = {}
        for result in applied.results:
            report.applied += result.applied
            report.duplicates += result.duplicates
            report.stale += result.stale
            report.collapsed += len(result.unsent)
            indexes = result.every_index
            if result.has_unknown:
                reason = f"unknown sku {result.sku!r}: not in the catalog"
                report.dead_letters.extend(DeadLetter(kept[i], reason) for i in result.unknown())
                indexes = result.known()
                if not indexes:
                    continue
            if result.visible_change or result.redelivered:
                target = to_reconcile
            elif self.suppress_unchanged:
                continue  # count-only noise: nothing a shopper sees, nor any score, changed
            else:
                target = count_only
            impact = target[result.sku] = _Impact(
                at_ms=min(kept[i].timestamp_ms for i in indexes),
                rescore=result.redelivered or self._scores_may_move(result),
            )
            if result.sold_out:
                impact.priority = PRIORITY_SELL_OUT
                report.sold_out_skus.add(result.sku)
        impacted = await self._impacted(to_reconcile)
        traced = self.traces is not None and self.traces.note(bundle_tag(k) for k in impacted)
        await self._recompute_all(impacted, report)
        if applied.lists is not None:
            await self._propagate_lists(applied.lists, report)
        if traced and self.traces is not None:
            # Noted before the writes: a worker may take a tag the moment it is queued.
            self.traces.forget(bundle_tag(k) for k in set(impacted) - set(report.changed))
        if not self.suppress_unchanged:
            await self._purge_unconditionally(count_only, report)
        # Last: the window's state, bundles and purge obligations on the replicas too, so the
        # offsets committed next survive a failover (a no-op when min_replicas is 0).
        await wait_for_replicas(self.applier.redis, self.min_replicas, self.replica_timeout)
        report.seconds = applied.seconds + time.perf_counter() - started
        if report.purges_enqueued and self.on_enqueue is not None:
            self.on_enqueue()
        return report

    async def _propagate_lists(self, lists: DecodedRecords, report: BatchReport) -> None:
        """Store the window's lists (version-gated) and recompute the bundles built from them."""
        await self.recomputer.sync_segments()
        accepted: list[ListEvent] = []
        at_ms = 2**62
        for record, event in zip(lists.valid, lists.events, strict=True):
            if not isinstance(event, ListEvent):
                continue
            rejected = segment_rejection(event.imported(), self.recomputer, 0)
            if rejected is not None:
                report.dead_letters.append(DeadLetter(record, str(rejected)))
                continue
            accepted.append(event)
            at_ms = min(at_ms, record.timestamp_ms)
        if not accepted:
            return
        outcome = ListImportReport()
        purge = PurgeRequest(self.purgers, PRIORITY_SOFT, at_ms)
        await apply_lists(self.recomputer, [e.imported() for e in accepted], purge, outcome)
        report.applied += outcome.created + outcome.replaced + outcome.unchanged
        report.stale += outcome.stale
        report.recomputed += outcome.recomputed
        report.changed.extend(outcome.changed)
        report.purges_enqueued += len(outcome.changed) * len(self.purgers)

    def _scores_may_move(self, result: SkuResult) -> bool:
        """Whether the SKU's scores may have moved: its stock state changed, its category
        changed, or its price moved across a segment's price band (the only ways events reach
        `origin.core.scoring`)."""
        if result.stock_state_changed or result.recategorised:
            return True
        return result.prices is not None and self.recomputer.price_move_rescores(*result.prices)

    async def _impacted(self, skus: dict[str, _Impact]) -> dict[FragmentKey, _Impact]:
        """Bundles that show, or should now show, each SKU, with merged priority and age.

        A SKU whose scores cannot have moved enters no new bundle: it is only looked up. A
        rescored SKU that is sold out now leaves its bundles with a sell-out's priority, even
        when this batch's own events did not sell it out: a later batch applied before this one
        propagated did (windows overlap), and that batch will find the SKU in no bundle. A
        bundle the SKU only enters (it does not show it yet) shows nothing untrue: soft.
        """
        if not skus:
            return {}
        rescored = [sku for sku, impact in skus.items() if impact.rescore]
        # The SKU index is read while the rescored products are (two independent reads).
        products, showing = await asyncio.gather(
            self.recomputer.current_products(rescored),
            self.recomputer.bundles_showing(list(skus)),
        )
        for sku, product in products.items():
            if stock_state(product.stock) == "sold_out":
                skus[sku].priority = PRIORITY_SELL_OUT
        entering = await self.recomputer.rescore(list(products.values())) if products else {}
        impacted: dict[FragmentKey, _Impact] = {}
        for sku, impact in skus.items():
            shown_in = showing.get(sku, set())
            for key in entering.get(sku, set()) | shown_in:
                merged = impacted.setdefault(key, _Impact(priority=PRIORITY_SOFT))
                priority = impact.priority if key in shown_in else PRIORITY_SOFT
                merged.priority = min(merged.priority, priority)
                merged.at_ms = min(merged.at_ms, impact.at_ms)
        return impacted

    async def _recompute_all(
        self, impacted: dict[FragmentKey, _Impact], report: BatchReport
    ) -> None:
        requests = {
            key: PurgeRequest(self.purgers, impact.priority, impact.at_ms)
            for key, impact in impacted.items()
        }
        for result in await self.recomputer.recompute_many(requests):
            report.recomputed += 1
            if result.changed:
                report.changed.append(result.key)
                report.purges_enqueued += len(self.purgers)

    async def _purge_unconditionally(self, skus: dict[str, _Impact], report: BatchReport) -> None:
        """Baseline without content-hash suppression: purge every bundle showing the SKU."""
        showing = await self.recomputer.bundles_showing(list(skus))
        for sku, keys in showing.items():
            for key in keys:
                request = PurgeRequest(self.purgers, skus[sku].priority, skus[sku].at_ms)
                await self.recomputer.enqueue_purge(key, request)
                report.purges_enqueued += len(self.purgers)
