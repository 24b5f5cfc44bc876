"""Collapse a window of SKU events to the state changes that can matter, before any Redis work.

Per-key version gating decides what an event does when a window is applied one event at a
time, in log order: an event changes its key only when its version is above every version
applied to that key before it, and an event id already seen for the SKU is a duplicate. The
keys are an inventory (SKU, location), a SKU's price and a SKU's content (upserts and
deletions share one version sequence). Within one window that rule already settles most events:

- a copy of an event of the same SKU earlier in the window (same id) is a duplicate;
- inventory and price events replace their key's whole value, so only the highest version (the
  first of equal ones) can leave a trace: it is *kept*, the rest are *superseded*;
- content upserts write only the fields they carry, so every upsert or deletion that is a new
  high for its key when it comes is kept, in log order (the applier gates each); the others are
  stale whatever Redis holds.

Applying only the kept events, in log order, leaves exactly the state that applying every event
in order leaves (`tests/invalidation/test_collapse.py` proves it against a model of the gate):
Redis work grows with the distinct keys of a window, not with its events. What only Redis knows
is each key's stored version before the window: the first kept event of a key that superseded
new highs asks for it (`KeyGroup.reports_before`), so those events are counted as the one-by-one
application would count them (applied when above it, stale otherwise; see `KeyGroup.count`).

Superseded events are never sent, so their ids are not remembered: a later redelivery of one is
refused by its version (stale) rather than by its id (duplicate), with the same effect.

Pure: no I/O, no clock; the caller keeps every record (dead letters, offsets, timestamps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from invalidation.events import CatalogEvent, Event, InventoryEvent


@dataclass(slots=True)
class KeyGroup:
    """The events of one key (inventory (SKU, location), price, or content) in a window."""

    high: int
    """The highest version so far."""
    winner: int
    """The window index of the event holding `high` (the first of equals)."""
    head: int
    """The key's first kept event: where the applier reports the stored version."""
    replaces_whole: bool
    """Inventory or price (only the winner is kept); False for content (every new high is)."""
    risen: list[int] = field(default_factory=list)
    """Versions of superseded events that were a new high when they came: applied one by one
    exactly when above the key's stored version."""
    stale: int = 0
    """Superseded events that were not a new high: stale whatever Redis holds."""

    @property
    def reports_before(self) -> bool:
        """Whether the head must report the key's stored version (some superseded event's
        count depends on it)."""
        return bool(self.risen)

    def count(self, before: int) -> tuple[int, int]:
        """(applied, stale) among this key's superseded events, given its stored version
        before the window."""
        applied = sum(1 for version in self.risen if version > before)
        return applied, len(self.risen) - applied + self.stale


@dataclass(slots=True)
class SkuWindow:
    """One SKU's events in a window, collapsed."""

    sku: str
    kept: list[int] = field(default_factory=list)
    """Window indexes of the events to apply, in log order."""
    others: list[int] = field(default_factory=list)
    """Window indexes of the events not sent (superseded and duplicates): still dead-lettered
    with their own coordinates when the SKU is unknown, still counted in its purge's age."""
    duplicates: int = 0
    """Copies of an event of this SKU earlier in the window."""
    groups: list[KeyGroup] = field(default_factory=list)

    def reporting(self) -> list[KeyGroup]:
        """The groups whose head reports its stored version, in the order of their heads in
        `kept` (the order the applier answers in)."""
        heads = {g.head: g for g in self.groups if g.reports_before}
        return [heads[i] for i in self.kept if i in heads]

    def counts(self, befores: Sequence[int]) -> tuple[int, int]:
        """(applied, stale) among the events not sent (duplicates apart), given the stored
        versions the reporting heads answered, in `reporting()` order."""
        reporting = self.reporting()
        if len(befores) != len(reporting):
            raise ValueError(
                f"SKU {self.sku!r}: {len(befores)} stored versions for "
                f"{len(reporting)} reporting keys"
            )
        applied = stale = 0
        for group, before in zip(reporting, befores, strict=True):
            a, s = group.count(before)
            applied += a
            stale += s
        stale += sum(g.stale for g in self.groups if not g.reports_before)
        return applied, stale


def collapse(events: Sequence[Event]) -> list[SkuWindow]:
    """The window's events per SKU (in order of first appearance), collapsed."""
    skus: dict[str, SkuWindow] = {}
    groups: dict[tuple[str, str], KeyGroup] = {}
    ids: set[tuple[str, str]] = set()
    for index, event in enumerate(events):
        sku = event.sku
        window = skus.get(sku)
        if window is None:
            window = skus[sku] = SkuWindow(sku)
        copy = (sku, event.event_id)
        if copy in ids:
            window.duplicates += 1
            window.others.append(index)
            continue
        ids.add(copy)
        if isinstance(event, InventoryEvent):
            key = (sku, event.location)
        elif isinstance(event, CatalogEvent):
            key = (sku, "\x00content")
        else:
            key = (sku, "\x00price")
        version = event.version
        group = groups.get(key)
        if group is None:
            whole = not isinstance(event, CatalogEvent)
            group = groups[key] = KeyGroup(version, index, index, whole)
            window.groups.append(group)
            if not whole:
                window.kept.append(index)
            continue
        if version <= group.high:
            group.stale += 1
            window.others.append(index)
            continue
        if group.replaces_whole:
            group.risen.append(group.high)
            window.others.append(group.winner)
            group.head = index
        else:
            window.kept.append(index)
        group.high, group.winner = version, index
    out = list(skus.values())
    for window in out:
        winners = [g.winner for g in window.groups if g.replaces_whole]
        if winners:
            window.kept = sorted(window.kept + winners) if window.kept else sorted(winners)
    return out


def every_event(events: Sequence[Event]) -> list[SkuWindow]:
    """The window per SKU with nothing collapsed: every event kept (the one-by-one reference,
    and what `EventApplier.apply` sends)."""
    skus: dict[str, SkuWindow] = {}
    for index, event in enumerate(events):
        window = skus.get(event.sku)
        if window is None:
            window = skus[event.sku] = SkuWindow(event.sku)
        window.kept.append(index)
    return list(skus.values())
