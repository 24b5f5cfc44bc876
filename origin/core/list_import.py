"""Apply imported recommendation lists: store each whole, then rebuild the bundles built from it.

The one path for every way a list arrives (``shelfedge import lists``, ``PUT /v1/lists/...``
and the ``lists.v1`` topic): lists are stored version-gated (`origin.core.list_store`), SKUs
the catalog does not hold are reported (not fatal: they stay in the list and appear once the
product exists and the bundle is next rebuilt), then every bundle whose slot takes its
candidates from one of the lists is recomputed through `Recomputer.recompute_many`, which
writes, and enqueues a purge for, only the bundles whose content hash changed. A stale or
repeated list still has its bundles recomputed (a no-op unless a crash interrupted the first
delivery between storing the list and rebuilding its bundles).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fragments.ids import FragmentKey
from origin.core.lists import ImportedList, ListRejection, ParsedLine
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer

IMPORT_CHUNK = 200
"""Lists stored and propagated together (one pipeline each way)."""
MAX_REPORTED_REJECTIONS = 1000
"""Rejections kept in a report (all are counted)."""


@dataclass(slots=True)
class ListImportReport:
    """What an import did: lists read, stored, rejected; SKUs unknown; bundles rebuilt."""

    read: int = 0
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    """Replaced by a list with the same items (the version moved, no bundle changed)."""
    stale: int = 0
    """Not applied: the stored list has this version or a newer one."""
    rejected: int = 0
    rejections: list[ListRejection] = field(default_factory=list)
    unknown_skus: dict[str, list[str]] = field(default_factory=dict)
    """List id -> its SKUs the catalog does not hold."""
    recomputed: int = 0
    changed: list[FragmentKey] = field(default_factory=list)
    """Bundles whose content changed (each purged)."""

    def reject(self, rejection: ListRejection) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            self.rejections.append(rejection)

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "created": self.created,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "rejected": self.rejected,
            "rejections": [
                {"line": r.line, "field": r.field, "reason": r.reason} for r in self.rejections
            ],
            "unknown_skus": self.unknown_skus,
            "bundles_recomputed": self.recomputed,
            "bundles_changed": [k.cache_key for k in self.changed],
        }


def segment_rejection(lst: ImportedList, recomputer: Recomputer, line: int) -> ListRejection | None:
    """A rejection when a segment list names a segment that is not configured."""
    if lst.kind == "segment" and lst.target not in recomputer.segments:
        known = ", ".join(sorted(recomputer.segments)) or "none"
        return ListRejection(line, "segment", f"unknown segment {lst.target!r} (known: {known})")
    return None


async def apply_lists(
    recomputer: Recomputer,
    lists: Sequence[ImportedList],
    purge: PurgeRequest | None,
    report: ListImportReport,
) -> set[FragmentKey]:
    """Store `lists` (version-gated) and rebuild their bundles; returns the bundles recomputed."""
    if not lists:
        return set()
    outcomes = await recomputer.imported.put_many(lists)
    for outcome in outcomes:
        if outcome.status == "created":
            report.created += 1
        elif outcome.status == "replaced":
            report.replaced += 1
        elif outcome.status == "unchanged":
            report.unchanged += 1
        else:
            report.stale += 1
    skus = sorted({sku for lst in lists for sku in lst.skus})
    unknown = set(await recomputer.imported.unknown_skus(skus))
    for lst in lists:
        missing = [sku for sku in lst.skus if sku in unknown]
        if missing:
            report.unknown_skus[lst.id] = missing
    keys = {k for lst in lists for k in recomputer.keys_using_list(lst.kind, lst.target, lst.name)}
    if keys:
        for result in await recomputer.recompute_many(dict.fromkeys(keys, purge)):
            report.recomputed += 1
            if result.changed:
                report.changed.append(result.key)
    return keys


async def import_lists(
    recomputer: Recomputer,
    parsed: Iterable[ParsedLine],
    purge: PurgeRequest | None,
) -> ListImportReport:
    """Apply a stream of parsed lines in chunks of `IMPORT_CHUNK`; rejections are reported.

    A later line for the same list in one import wins (it replaces the earlier one, which is
    counted as read but not stored).
    """
    report = ListImportReport()
    chunk: dict[str, ImportedList] = {}
    for line, item in parsed:
        report.read += 1
        if isinstance(item, ListRejection):
            report.reject(item)
            continue
        problem = segment_rejection(item, recomputer, line)
        if problem is not None:
            report.reject(problem)
            continue
        chunk[item.id] = item
        if len(chunk) >= IMPORT_CHUNK:
            await apply_lists(recomputer, list(chunk.values()), purge, report)
            chunk.clear()
    await apply_lists(recomputer, list(chunk.values()), purge, report)
    return report
