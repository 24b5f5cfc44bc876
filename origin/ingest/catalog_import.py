"""Import a product feed into the catalog: stage it all, then switch, then recompute what changed.

Three phases, in order:

1. **Stage**: stream the feed (`origin.ingest.catalog_feed`), judge every item
   (`origin.ingest.feed_fields`), and spool the valid ones to local disk. An item whose
   fingerprint equals the one of the item last applied to its SKU is unchanged and is not parsed
   again. Nothing a reader sees in Redis changes (for a full feed, how many of its ids the
   catalog already holds is counted, for phase 2's removals). If more than
   `reject_threshold` of the items read were rejected, the import aborts here: nothing is
   applied.
2. **Apply**: write the staged items into product documents (one Lua call per SKU bucket) and,
   for a full feed, remove the products the feed no longer contains (out of every ranked list
   first, then their documents). Bundles are not touched: shoppers still see the old feed.
   New products are ranked in bulk meanwhile (`Recomputer.top_scores`: each scored once for
   every list, the best of each list kept in memory) and merged into the lists once, after the
   last chunk; chunk k+1 is applied in Redis while chunk k's outcomes are ranked here.
3. **Propagate**: rescore what may rank differently, then recompute every bundle that shows (or
   should now show) a created, changed or removed product, through `Recomputer.recompute_many`:
   each bundle is rebuilt from the fully applied catalog and written in one atomic
   compare-and-set only when its content hash changed, its purge enqueued in the same write. An
   unchanged feed recomputes nothing and purges nothing; a 1 % price change purges only the
   bundles showing those products.

What "atomic" means here (docs/catalog-feeds.md): an import is all or nothing until phase 2
starts; the unit a shopper sees, a bundle, goes from its old content to its new content in one
write, built after every item of the feed was applied, so no bundle written by an import shows
part of a feed. Product documents are not switched together (they live in many hash slots): a
reader of single products sees each product old or new, and for the seconds of phase 2 some
products new and others old. A crash in phase 2 or 3 leaves the SKUs applied so far in
`origin.core.keys.CATALOG_IMPORT_PENDING_KEY`; the next import recomputes their bundles.
"""

from __future__ import annotations

import asyncio
import gc
import io
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter
from typing import BinaryIO

from fragments.cards import stock_state
from fragments.ids import FragmentKey
from origin.core import keys
from origin.core.catalog import Product
from origin.core.list_ranking import TopScores
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text
from origin.core.scoring import ListScorer
from origin.core.store import Store
from origin.ingest.apply_feed import DEFAULT_MARGIN, DEFAULT_POPULARITY, FeedApplier, ItemOutcome
from origin.ingest.catalog_feed import (
    CountingReader,
    FeedFormat,
    RawChunk,
    RawItem,
    detect_format,
    may_hold,
    read_chunks,
)
from origin.ingest.compression import decompressed
from origin.ingest.errors import FeedUnreadable, ImportAborted, ImportBusy
from origin.ingest.feed_fields import (
    FEED_AVAILABLE_UNITS,
    PARSER_VERSION,
    SALE_WINDOW,
    FeedItem,
)
from origin.ingest.judging import Judged, Judges, worker_count
from origin.ingest.report import ImportMode, ImportReport, Rejection, Unit
from origin.ingest.spool import ItemSpool

DEFAULT_REJECT_THRESHOLD = 0.01
STAGE_CHUNK = 20_000
APPLY_CHUNK = 2000
APPLY_AHEAD = 4
"""Chunks sent to Redis to apply before the oldest one's outcomes are taken: enough that Redis
always has one queued while this process ranks (2 left it idle for about a fifth of a first
import's apply phase)."""
LOCK_SECONDS = 3600
SCAN_PAGE = 10_000
"""SKUs asked for at a time when a full feed's removals are looked for."""
GC_THRESHOLD = 200_000
"""Allocations between young-generation collections during an import (Python's default: 700)."""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Progress = Callable[[str, int, int | None], None]
"""(phase, done, total): phases ``stage`` (bytes read), ``apply`` and ``propagate`` (items)."""


@dataclass
class _Comparing:
    """A staged chunk whose fingerprints are being compared in Redis."""

    chunk: RawChunk
    changed: asyncio.Future[list[int]]
    """Ascending positions (into the chunk, or into the candidates with an id when sifted) of
    the items whose fingerprint changed."""
    sifted: tuple[list[RawItem], list[RawItem]] | None = None
    """(candidates, those with an id) of a chunk sifted one item at a time."""
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class _Named:
    """The ids a feed names: for duplicates, and for a full feed's removals."""

    ids: set[str] = field(default_factory=set)
    runs: list[tuple[list[str], list[int]]] = field(default_factory=list)
    """(ids, their positions) as chunks named them: where an id was first named is indexed
    only once a repeat is looked into (`first_position`)."""
    first: dict[str, int] | None = None
    """Id -> the position it was first named at, once indexed (then kept up to date)."""
    in_catalog: int = 0
    """How many of them the catalog's SKU set held when they were staged (a full feed)."""
    indexed: int = 0
    """SKUs the apply added to the catalog's SKU set (products the feed created)."""

    def add_run(self, skus: list[str], positions: list[int]) -> bool:
        """Remember ids named at `positions` when none repeats; else False, nothing kept."""
        new = set(skus)
        if len(new) != len(skus) or not self.ids.isdisjoint(new):
            return False
        self.ids |= new
        if self.first is None:
            self.runs.append((skus, positions))
        else:
            self.first.update(zip(skus, positions, strict=True))
        return True

    def add(self, sku: str, position: int) -> None:
        """Remember one id not named before."""
        self.ids.add(sku)
        self._index()[sku] = position

    def first_position(self, sku: str) -> int:
        """Where `sku` was first named."""
        return self._index()[sku]

    def _index(self) -> dict[str, int]:
        if self.first is None:
            self.first = {}
            for skus, positions in self.runs:
                self.first.update(zip(skus, positions, strict=True))
            self.runs.clear()
        return self.first

    def clear(self) -> None:
        self.ids.clear()
        self.runs.clear()
        self.first = None


class CatalogImporter:
    """Imports feeds into one store, recomputing with one recomputer."""

    def __init__(
        self,
        store: Store,
        recomputer: Recomputer,
        purgers: Sequence[str],
        *,
        currency: str = "USD",
        timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        judge_workers: int | None = None,
    ) -> None:
        """`clock` gives an import its "now" (Unix seconds): which sale windows are open.
        `judge_workers`: worker processes that validate large chunks (default: one per core
        beyond the first, `origin.ingest.judging.worker_count`; 0: none)."""
        self.store = store
        self.recomputer = recomputer
        self.purgers = tuple(purgers)
        self.currency = currency
        self.timeout = timeout
        self.clock = clock
        self.judge_workers = worker_count(judge_workers)
        self.applier = FeedApplier(store.redis, timeout)
        self._release = store.redis.register_script(_RELEASE)

    async def run(
        self,
        stream: BinaryIO,
        *,
        source: str,
        mode: ImportMode = "full",
        reject_threshold: float = DEFAULT_REJECT_THRESHOLD,
        fmt: FeedFormat | None = None,
        total_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Import the feed read from `stream`; raises `ImportAborted` (with `.report`) when the
        reject threshold is exceeded, `FeedUnreadable` when the feed cannot be read at all,
        `ImportBusy` when another import is running."""
        token = secrets.token_hex(8)
        locked = await bounded(
            self.store.redis.set(keys.CATALOG_IMPORT_LOCK_KEY, token, nx=True, ex=LOCK_SECONDS),
            self.timeout,
            "take the import lock",
        )
        if not locked:
            raise ImportBusy("another catalog import is running (retry when it has finished)")
        try:
            with _fewer_collections():
                return await self._run(
                    stream, source, mode, reject_threshold, fmt, total_bytes, progress or _quiet
                )
        finally:
            await bounded(
                self._release(keys=[keys.CATALOG_IMPORT_LOCK_KEY], args=[token]),
                self.timeout,
                "release the import lock",
            )

    async def _run(
        self,
        stream: BinaryIO,
        source: str,
        mode: ImportMode,
        threshold: float,
        fmt: FeedFormat | None,
        total_bytes: int | None,
        progress: Progress,
    ) -> ImportReport:
        counting = CountingReader(stream)
        buffered, _ = decompressed(io.BufferedReader(counting, buffer_size=1 << 16))
        fmt = fmt or detect_format(buffered)
        report = ImportReport(source=source, format=fmt, mode=mode, reject_threshold=threshold)
        unit: Unit = "item" if fmt == "xml" else "line"
        started = time.perf_counter()
        now = self.clock()
        """The import's "now": whether each sale window is in effect."""
        context = f"{PARSER_VERSION}|{self.currency}".encode()
        named = _Named()
        judges = Judges(self.currency, now, unit, workers=self.judge_workers)
        with ItemSpool() as spool:
            chunks = read_chunks(buffered, fmt, context, STAGE_CHUNK)
            # Reading and judging run in worker threads (judging of large chunks in worker
            # processes, `Judges`), so an import inside the web service leaves its event loop
            # free to serve meanwhile. The next chunk is read while this one's fingerprints are
            # compared in Redis, and chunk k+1's are compared while chunk k is judged.
            ahead = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
            comparing: deque[_Comparing] = deque()
            judging: deque[asyncio.Future[Judged]] = deque()
            try:
                while chunk := await ahead:
                    ahead = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
                    comparing.append(self._compare(chunk, named, report, unit))
                    if len(comparing) > 1:
                        judged = self._judge_compared(comparing.popleft(), judges, report)
                        judging.append(asyncio.ensure_future(judged))
                    if len(judging) >= judges.in_flight:
                        _spool_judged(await judging.popleft(), spool, report)
                    progress("stage", counting.count, total_bytes)
                while comparing:
                    judged = self._judge_compared(comparing.popleft(), judges, report)
                    judging.append(asyncio.ensure_future(judged))
                while judging:
                    _spool_judged(await judging.popleft(), spool, report)
            finally:
                if not ahead.done():  # a failed chunk: the read-ahead's chunk is not wanted
                    await asyncio.wait([ahead])
                if not ahead.cancelled():
                    ahead.exception()  # nor is its error (the one raised is the chunk's)
                for each in comparing:  # nor are the later chunks' comparisons
                    if each.changed.done() and not each.changed.cancelled():
                        each.changed.exception()
                    each.changed.cancel()
                if judging:  # nor are the later chunks' judgements
                    await asyncio.wait(judging)
                    for task in judging:
                        if not task.cancelled():
                            task.exception()
                await asyncio.to_thread(judges.close)
                report.judged_in_workers = judges.sent_items
            report.seconds_staging = time.perf_counter() - started
            if report.read == 0:
                raise FeedUnreadable(f"{source}: the feed holds no items")
            if report.reject_ratio > threshold:
                await self._remember(report)
                raise ImportAborted(
                    f"{report.rejected} of {report.read} items rejected "
                    f"({report.reject_ratio:.2%} > {threshold:.2%}): nothing applied",
                    report,
                )
            await self._apply_and_propagate(spool, report, named, progress)
        report.applied = True
        await self._remember(report)
        return report

    def _compare(
        self, chunk: RawChunk, named: _Named, report: ImportReport, unit: Unit
    ) -> _Comparing:
        """Stage one chunk of raw items (in feed order): its ids remembered, its unreadable
        items and repeated ids rejected, and its fingerprints sent to Redis to compare."""
        report.read += len(chunk)
        if _first_seen(chunk, named):
            # The common case, by columns: an item object only for what is validated.
            changed = self._changed(chunk.skus, chunk.digests, report, named)
            return _Comparing(chunk, asyncio.ensure_future(changed))
        # An unreadable item, one without an id, or a repeated id.
        rejected: list[Rejection] = []
        candidates = self._sift(chunk, named, rejected, unit)
        with_id = [r for r in candidates if r.sku]
        skus, digests = [r.sku for r in with_id], [r.digest for r in with_id]
        changed = self._changed(skus, digests, report, named)
        return _Comparing(chunk, asyncio.ensure_future(changed), (candidates, with_id), rejected)

    async def _judge_compared(
        self, comparing: _Comparing, judges: Judges, report: ImportReport
    ) -> Judged:
        """Judge a compared chunk: unchanged fingerprints counted, the rest validated; its own
        rejections (unreadable items, repeated ids) joined to the validation's."""
        changed = await comparing.changed
        to_judge: RawChunk | list[RawItem]
        if comparing.sifted is None:
            to_judge = _to_judge_chunk(comparing.chunk, changed)
            report.unchanged += len(comparing.chunk) - len(to_judge)
        else:
            candidates, with_id = comparing.sifted
            to_judge = _to_judge(candidates, with_id, changed)
            report.unchanged += len(candidates) - len(to_judge)
        judged = await judges.judge(to_judge)
        judged.rejected.extend(comparing.rejected)
        return judged

    async def _changed(
        self, skus: list[str], digests: list[bytes], report: ImportReport, named: _Named
    ) -> list[int]:
        """The positions (into `skus`) of the items whose fingerprint changed; for a full feed,
        how many of `skus` the catalog holds is counted meanwhile (`_Named.in_catalog`)."""
        prints = self.applier.changed_prints(skus, digests)
        if report.mode == "full" and skus:
            changed, known = await asyncio.gather(prints, self.applier.count_known(skus))
            named.in_catalog += known
            return changed
        return await prints

    @staticmethod
    def _sift(
        chunk: RawChunk, named: _Named, rejected: list[Rejection], unit: Unit
    ) -> list[RawItem]:
        """The chunk's candidates, one item at a time: unreadable items and duplicate ids
        rejected, each id remembered with its position."""
        candidates: list[RawItem] = []
        for raw in chunk.items():
            if raw.error is not None:
                rejected.append(Rejection(raw.position, unit, raw.sku, *raw.error))
                continue
            if raw.sku in named.ids:
                first = named.first_position(raw.sku)
                reason = f"duplicate id: the same id is at {unit} {first}"
                rejected.append(Rejection(raw.position, unit, raw.sku, "id", reason))
                continue
            if raw.sku:
                named.add(raw.sku, raw.position)
            candidates.append(raw)
        return candidates

    async def _apply_and_propagate(
        self, spool: ItemSpool, report: ImportReport, named: _Named, progress: Progress
    ) -> None:
        started = time.perf_counter()
        redis = self.store.redis
        pending = await bounded(
            redis.smembers(keys.CATALOG_IMPORT_PENDING_KEY), self.timeout, "read pending SKUs"
        )
        leftovers: list[str] = sorted(as_text(s) for s in pending)
        """SKUs a crashed import applied without recomputing their bundles."""
        showing: list[str] = []
        """SKUs already in the catalog whose cards (or ranks) may have changed."""
        impacted: dict[FragmentKey, int] = {}
        done = 0
        await self.recomputer.sync()
        fresh = self.recomputer.top_scores()
        """New products ranked in bulk: each scored once for every list, merged once."""
        scorer = self.recomputer.list_scorer()
        # Chunks are applied (Lua, in Redis) while earlier chunks' outcomes are ranked (Python
        # here), `APPLY_AHEAD` of them in flight, so that neither process waits for the other.
        # SKUs are unique in a feed, so no two chunks touch the same product.
        ahead: deque[asyncio.Task[list[ItemOutcome]]] = deque()
        try:
            for frames in spool.chunks(APPLY_CHUNK):
                ahead.append(asyncio.ensure_future(self._apply_chunk(frames, named)))
                if len(ahead) > APPLY_AHEAD:
                    outcomes = await ahead.popleft()
                    done += await self._take(outcomes, fresh, scorer, showing, impacted, report)
                    progress("apply", done, spool.count)
            while ahead:
                outcomes = await ahead.popleft()
                done += await self._take(outcomes, fresh, scorer, showing, impacted, report)
                progress("apply", done, spool.count)
        finally:
            for task in ahead:  # a chunk failed: the later ones are not wanted, nor their errors
                if task.done() and not task.cancelled():
                    task.exception()
                task.cancel()
        if fresh:
            for keys_ in (await self.recomputer.merge_top_scores(fresh)).values():
                for key in keys_:
                    impacted.setdefault(key, 1)  # new products that rank: none sold out
        if report.mode == "full":
            await self._remove_absent(report, impacted, named)
        named.clear()
        report.seconds_applying = time.perf_counter() - started
        started = time.perf_counter()
        for chunk in _chunks(leftovers, APPLY_CHUNK):
            await self._rank(await self._index(chunk), impacted)
        showing += leftovers
        await self._showing(showing, impacted, progress)
        now_ms = int(time.time() * 1000)
        requests = {
            key: PurgeRequest(self.purgers, priority, now_ms) for key, priority in impacted.items()
        }
        for result in await self.recomputer.recompute_many(requests):
            report.bundles_recomputed += 1
            if result.changed:
                report.bundles_changed += 1
                report.purges_enqueued += len(self.purgers)
        await bounded(redis.delete(keys.CATALOG_IMPORT_PENDING_KEY), self.timeout, "clear pending")
        report.seconds_propagating = time.perf_counter() - started

    async def _apply_chunk(
        self, frames: list[tuple[FeedItem, bytes]], named: _Named
    ) -> list[ItemOutcome]:
        """Mark a chunk's SKUs pending, apply its items, index the new SKUs (counted in
        `named.indexed`)."""
        redis = self.store.redis
        skus = [item.sku for item, _ in frames]
        await bounded(
            redis.sadd(keys.CATALOG_IMPORT_PENDING_KEY, *skus), self.timeout, "mark pending"
        )
        outcomes = await self.applier.apply(
            frames, FEED_AVAILABLE_UNITS, DEFAULT_POPULARITY, DEFAULT_MARGIN
        )
        created = [o.item.sku for o in outcomes if o.status == "created"]
        if created:
            added = await bounded(
                redis.sadd(keys.CATALOG_SKUS_KEY, *created), self.timeout, "index SKUs"
            )
            named.indexed += added  # after the await: chunks are applied concurrently
        return outcomes

    async def _take(
        self,
        outcomes: list[ItemOutcome],
        fresh: TopScores,
        scorer: ListScorer,
        showing: list[str],
        impacted: dict[FragmentKey, int],
        report: ImportReport,
    ) -> int:
        """Count a chunk's outcomes; new products into the bulk ranking, products that may
        rank differently rescored, changed ones to look up. Returns the chunk's size."""
        moved: list[str] = []
        for outcome in outcomes:
            if outcome.status == "unchanged":
                report.unchanged += 1
            elif outcome.status == "created":
                report.created += 1  # shown by no bundle yet: ranked straight from the item
                item = outcome.item
                scores = scorer.scores_of(
                    item.category, item.price_cents, item.stock_units, DEFAULT_POPULARITY,
                    DEFAULT_MARGIN, item.labels, partial(_new_product, item),
                )  # fmt: skip
                fresh.add(item.sku, scores)
            else:
                report.changed += 1
                showing.append(outcome.item.sku)
                if self._may_rank_differently(outcome):
                    moved.append(outcome.item.sku)
        await self._rescore(moved, impacted)
        return len(outcomes)

    def _may_rank_differently(self, outcome: ItemOutcome) -> bool:
        """Whether the item may move its product's scores: created, a new category or custom
        label, a stock state turned over, or a price across a segment's band (over-approximated:
        a rescore is only work, the content hash decides what is purged)."""
        item = outcome.item
        if (
            outcome.status == "created"
            or outcome.category_before != item.category
            or outcome.relabelled
        ):
            return True
        was_sold_out = stock_state(outcome.stock_before or 0) == "sold_out"
        if was_sold_out != (item.stock_units == 0):
            return True
        before = outcome.price_before
        return before is None or self.recomputer.price_move_rescores(before, item.price_cents)

    async def _remove_absent(
        self, report: ImportReport, impacted: dict[FragmentKey, int], named: _Named
    ) -> None:
        """A full feed is the whole catalog: remove the products it does not name. They leave
        every ranked list (scored as sold out) before their documents go, and every bundle
        showing them is recomputed with a sell-out's purge priority."""
        absent = sorted(await self._absent(named))
        for chunk in _chunks(absent, APPLY_CHUNK):
            products = await self.store.products(chunk, locations=False)
            gone = [replace(p, stock=0) for p in products.values()]
            if gone:
                await self.recomputer.rescore(gone)
            for keys_ in (await self.recomputer.bundles_showing(chunk)).values():
                for key in keys_:
                    impacted[key] = 0
            await self.applier.remove(chunk)
            report.removed += len(chunk)

    async def _absent(self, named: _Named) -> list[str]:
        """The catalog's SKUs the feed does not name. When the catalog holds as many SKUs as
        the feed named and it held, plus those the apply added, it holds no other: nothing is
        read back (the common case, a full feed of an unchanged assortment). Otherwise the
        catalog's SKU set is scanned a page at a time against the ids the feed named."""
        redis = self.store.redis
        held = await bounded(redis.scard(keys.CATALOG_SKUS_KEY), self.timeout, "count the SKUs")
        if held == named.in_catalog + named.indexed:
            return []
        absent: list[str] = []
        cursor: int = 0
        while True:
            cursor, page = await bounded(
                redis.sscan(keys.CATALOG_SKUS_KEY, cursor, count=SCAN_PAGE),
                self.timeout,
                "find the products the feed does not name",
            )
            absent += (sku for sku in map(as_text, page) if sku not in named.ids)
            if not cursor:
                return list(set(absent))  # a scan may give a member twice

    async def _index(self, leftovers: Sequence[str]) -> dict[str, Product]:
        """Index the leftover SKUs that have a product document, and return those products: a
        crash between the apply script and the index write left new products unindexed, and
        their fingerprints make every later import count them unchanged (so no later apply
        would index them)."""
        present = await self.recomputer.current_products(leftovers)
        if present:
            await bounded(
                self.store.redis.sadd(keys.CATALOG_SKUS_KEY, *present), self.timeout, "index SKUs"
            )
        return present

    async def _rescore(self, moved: Sequence[str], impacted: dict[FragmentKey, int]) -> None:
        """Rank the stored state of `moved` products in every list (`_rank`)."""
        if moved:
            await self._rank(await self.recomputer.current_products(moved), impacted)

    async def _rank(self, products: dict[str, Product], impacted: dict[FragmentKey, int]) -> None:
        """Rank `products` in every list; the bundles they now enter are impacted (a
        sell-out's first)."""
        if not products:
            return
        entering = await self.recomputer.rescore(list(products.values()))
        for sku, keys_ in entering.items():
            priority = 0 if stock_state(products[sku].stock) == "sold_out" else 1
            for key in keys_:
                impacted[key] = min(impacted.get(key, 1), priority)

    async def _showing(
        self, skus: list[str], impacted: dict[FragmentKey, int], progress: Progress
    ) -> None:
        """The bundles showing products that were already in the catalog are impacted."""
        done = 0
        for chunk in _chunks(skus, APPLY_CHUNK * 5):
            for keys_ in (await self.recomputer.bundles_showing(chunk)).values():
                for key in keys_:
                    impacted.setdefault(key, 1)
            done += len(chunk)
            progress("propagate", done, len(skus))

    async def _remember(self, report: ImportReport) -> None:
        await bounded(
            self.store.redis.set(keys.CATALOG_IMPORT_LAST_KEY, report.to_json()),
            self.timeout,
            "store the import report",
        )


def _new_product(item: FeedItem) -> Product:
    """The product document the apply script writes for a new item, as recomputes read it."""
    return Product(
        sku=item.sku,
        title=item.title,
        brand=item.brand,
        category=item.category,
        price_cents=item.price_cents,
        compare_at_cents=item.compare_at_cents,
        currency=item.currency,
        promo=None,
        stock=item.stock_units,
        popularity=DEFAULT_POPULARITY,
        margin=DEFAULT_MARGIN,
        link=item.link,
        image_link=item.image_link,
        labels=item.labels,
    )


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run less often the collector of reference cycles (its threshold raised, restored after):
    an import allocates a few objects per item and frees them at once, creates no cycles, and
    otherwise spends a tenth to a fifth of its CPU scanning the objects it keeps (the SKUs
    seen). Memory stays bounded: reference counting frees what an import drops."""
    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _spool_judged(judged: Judged, spool: ItemSpool, report: ImportReport) -> None:
    """A judged chunk's valid items spooled, its rejections reported in feed order."""
    spool.write(judged.batches, judged.count)
    for rejection in sorted(judged.rejected, key=attrgetter("position")):
        report.reject(rejection)


def _first_seen(chunk: RawChunk, named: _Named) -> bool:
    """The common case in bulk: when every item of the chunk was read, has an id, and no id
    repeats (within the chunk or from earlier chunks), remember the ids and return True; else
    False and `named` untouched (the caller sifts the chunk one item at a time)."""
    if chunk.errors or not all(chunk.skus):
        return False
    return named.add_run(chunk.skus, chunk.positions)


def _to_judge_chunk(chunk: RawChunk, changed: list[int]) -> RawChunk:
    """`_to_judge` of a chunk whose items all have an id: those whose fingerprint changed
    (`changed`: ascending indices), and every item with a sale window."""
    if not chunk.may_hold(SALE_WINDOW):  # no item looked at again
        return chunk if len(changed) == len(chunk) else chunk.subset(changed)
    marked = set(changed)
    return chunk.subset(
        [at for at, raw in enumerate(chunk.items()) if at in marked or raw.fields.get(SALE_WINDOW)]
    )


def _to_judge(candidates: list[RawItem], named: list[RawItem], changed: list[int]) -> list[RawItem]:
    """The candidates to validate, in feed order: those whose fingerprint is not the stored one
    (`changed`: ascending positions into `named`, the candidates with an id), those without an
    id, and every item with a sale window even when unchanged: whether its sale price applies
    depends on the time of the import (the apply script then writes only what moved)."""
    timed = may_hold(candidates, SALE_WINDOW)
    if len(named) == len(candidates) and not timed:
        return [named[at] for at in changed]  # the common case: no item looked at again
    marked = {id(named[at]) for at in changed}
    return [
        raw
        for raw in candidates
        if not raw.sku or id(raw) in marked or (timed and raw.fields.get(SALE_WINDOW))
    ]


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _quiet(phase: str, done: int, total: int | None) -> None:
    """The default progress callback: reports nothing."""
