"""Add, change and remove segments in a running store, with their bundles and cache entries.

- Adding a segment stores it, ranks its lists and builds every bundle of it.
- Changing one stores it and rebuilds its lists and bundles: a bundle whose content changed is
  written with its purge obligation (the usual content-hash rule), the rest are left alone.
- Removing one takes it out of the stored segments first (a consumer following the stored
  segments, `Recomputer.sync_segments`, then stops maintaining it), then retires each of its
  (slot, segment) partitions in one script: its bundles, content hashes, SKU index and ranked
  lists are deleted and the ``segment:<id>`` cache tag is enqueued in the same call on the purge
  queue of every purger, so no shared cache keeps serving a retired segment. The imported
  recommendation lists of the segment are kept (they are the retailer's data; a segment added
  again uses them).

The stored segment set is updated with an optimistic transaction (WATCH), so two editors
changing different segments at once both land.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import WatchError

from fragments.ids import FragmentKey, partition_of
from fragments.tags import segment_tag
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.catalog import Segment, segments_from_json, segments_to_json
from origin.core.purge_queue import ENQUEUE_PURGES_LUA, PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text
from origin.core.store import Store
from origin.errors import RecomputeConflict, UnknownEntity

MAX_WATCH_ATTEMPTS = 16

_RETIRE_PARTITION = (
    ENQUEUE_PURGES_LUA
    + """
-- KEYS[1..n]: the partition's keys to delete; then purge queue / generation pairs.
-- ARGV: n, the cache tag, priority, at_ms.
local n = tonumber(ARGV[1])
local deleted = 0
for i = 1, n do deleted = deleted + redis.call('DEL', KEYS[i]) end
if #KEYS > n then enqueue_purges(n + 1, ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])) end
return deleted
"""
)


@dataclass(slots=True)
class SegmentChangeReport:
    """What a segment change did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    bundles_built: int = 0
    """Bundles recomputed for added or changed segments."""
    bundles_changed: int = 0
    """Of those, bundles written (new, or with changed content: purged)."""
    bundles_retired: int = 0
    purged_tags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "bundles_built": self.bundles_built,
            "bundles_changed": self.bundles_changed,
            "bundles_retired": self.bundles_retired,
            "purged_tags": self.purged_tags,
        }


class SegmentEditor:
    """Applies segment changes to one store, building and retiring bundles."""

    def __init__(self, store: Store, builder: BundleBuilder, purgers: Sequence[str]) -> None:
        self.store = store
        self.builder = builder
        self.purgers = tuple(purgers)
        self._retire = store.redis.register_script(_RETIRE_PARTITION)

    def _purge(self) -> PurgeRequest:
        return PurgeRequest(self.purgers, 1, int(time.time() * 1000))

    async def put(self, segment: Segment) -> SegmentChangeReport:
        """Add or replace one segment; build (or rebuild) its bundles."""

        def change(current: dict[str, Segment]) -> dict[str, Segment]:
            return {**current, segment.id: segment}

        before = await self._update(change)
        return await self._after({segment.id: before.get(segment.id)}, {segment.id: segment})

    async def delete(self, segment_id: str) -> SegmentChangeReport:
        """Remove one segment and retire its bundles; UnknownEntity when it does not exist."""

        def change(current: dict[str, Segment]) -> dict[str, Segment]:
            if segment_id not in current:
                raise UnknownEntity("segment", segment_id)
            return {k: v for k, v in current.items() if k != segment_id}

        before = await self._update(change)
        return await self._after({segment_id: before[segment_id]}, {})

    async def replace_all(self, segments: Sequence[Segment]) -> SegmentChangeReport:
        """Make the stored segments exactly `segments` (a segments file applied): adds, changes
        and removals, each with its bundles."""
        wanted = {s.id: s for s in segments}
        before = await self._update(lambda _current: dict(wanted))
        return await self._after(before, wanted)

    async def _update(
        self, change: Callable[[dict[str, Segment]], dict[str, Segment]]
    ) -> dict[str, Segment]:
        """Apply `change` to the stored segments atomically; returns the segments before."""
        redis: RedisLike = self.store.redis
        for _ in range(MAX_WATCH_ATTEMPTS):
            async with redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(keys.SEGMENTS_KEY)
                    raw = await pipe.get(keys.SEGMENTS_KEY)
                    current = {s.id: s for s in (segments_from_json(raw) if raw else [])}
                    after = change(dict(current))
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(keys.SEGMENTS_KEY, segments_to_json(list(after.values())))
                    await bounded(pipe.execute(), max(self.store.timeout, 2.0), "store segments")
                    return current
                except WatchError:
                    continue
        raise RecomputeConflict(f"segments changed concurrently {MAX_WATCH_ATTEMPTS}x")

    async def _after(
        self, before: dict[str, Segment | None] | dict[str, Segment], after: dict[str, Segment]
    ) -> SegmentChangeReport:
        report = SegmentChangeReport()
        build: list[Segment] = []
        for sid, segment in after.items():
            old = before.get(sid)
            if old is None:
                report.added.append(sid)
                build.append(segment)
            elif old != segment:
                report.updated.append(sid)
                build.append(segment)
            else:
                report.unchanged.append(sid)
        if build:
            recomputer = Recomputer(self.store, self.builder, build)
            products = await self.store.products(await self.store.all_skus(), locations=False)
            results = await recomputer.rebuild_all(list(products.values()), purge=self._purge())
            report.bundles_built += len(results)
            report.bundles_changed += sum(r.changed for r in results)
        for sid in sorted(set(before) - set(after)):
            if before.get(sid) is None:
                continue
            report.removed.append(sid)
            report.bundles_retired += await self._retire_segment(sid)
            report.purged_tags.append(segment_tag(sid))
        return report

    async def _retire_segment(self, segment_id: str) -> int:
        """Delete every partition of the segment and enqueue its cache tag; bundles deleted."""
        retired = 0
        purge = self._purge()
        for position, slot in enumerate(self.builder.slots.slots):
            partition = partition_of(slot, segment_id)
            cache_keys = await bounded(
                self.store.redis.hkeys(keys.partition_hashes_key(partition)),
                max(self.store.timeout, 2.0),
                "read partition",
            )
            bundle_keys = [
                keys.bundle_key(FragmentKey.from_cache_key(as_text(k))) for k in cache_keys
            ]
            list_keys = [keys.segment_list_key(partition), keys.list_floors_key(partition)]
            async for found in self.store.redis.scan_iter(
                match=keys.segment_list_key(partition) + ":*", count=500
            ):
                list_keys.append(as_text(found))
            doomed = [
                *bundle_keys,
                *list_keys,
                keys.partition_hashes_key(partition),
                keys.partition_index_key(partition),
                keys.partition_bundles_key(partition),
            ]
            # The segment's tag covers all its slots: enqueued once, with the first partition.
            queues = purge.queue_keys(partition) if position == 0 else []
            await bounded(
                self._retire(
                    keys=[*doomed, *queues],
                    args=[len(doomed), segment_tag(segment_id), purge.priority, purge.at_ms],
                ),
                max(self.store.timeout, 2.0),
                "retire partition",
            )
            retired += len(bundle_keys)
        return retired
