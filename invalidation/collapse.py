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


class SkuWindow:
    """One SKU's events in a window, collapsed (a plain slotted class: one is made per SKU of
    every window; a SKU with one event shares the empty defaults)."""

    __slots__ = ("duplicates", "groups", "kept", "others", "sku")

    def __init__(self, sku: str, kept: list[int]) -> None:
        self.sku = sku
        self.kept = kept
        """Window indexes of the events to apply, in log order."""
        self.others: Sequence[int] = ()
        """Window indexes of the events not sent (superseded and duplicates): still
        dead-lettered with their own coordinates when the SKU is unknown, still counted in its
        purge's age."""
        self.duplicates = 0
        """Copies of an event of this SKU earlier in the window."""
        self.groups: Sequence[KeyGroup] = ()
        """The keys with more than one event in the window."""

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


_CONTENT = "\x00content"
_PRICE = "\x00price"


def collapse(events: Sequence[Event]) -> list[SkuWindow]:
    """The window's events per SKU (in order of first appearance), collapsed."""
    out = every_event(events)
    for window in out:
        if len(window.kept) > 1:
            _collapse_sku(window, events)
    return out


def _collapse_sku(window: SkuWindow, events: Sequence[Event]) -> None:
    """Collapse one SKU's events (`window.kept`: all of them, in log order)."""
    indexes = window.kept
    kept: list[int] = []
    others: list[int] = []
    groups: list[KeyGroup] = []
    keys: dict[str, int | KeyGroup] = {}
    """Per key, its only event so far, or its group once it has a second one."""
    ids: set[str] = set()
    for index in indexes:
        event = events[index]
        event_id = event.event_id
        if event_id in ids:
            window.duplicates += 1
            others.append(index)
            continue
        ids.add(event_id)
        kind = type(event)  # the decoders' exact types (isinstance is slower on Structs)
        if kind is InventoryEvent:
            key: str = event.location  # type: ignore[union-attr]
        elif kind is CatalogEvent:
            key = _CONTENT
        else:
            key = _PRICE
        group = keys.get(key)
        if group is None:
            keys[key] = index
            continue
        if isinstance(group, int):
            group = keys[key] = KeyGroup(events[group].version, group, group, key != _CONTENT)
            groups.append(group)
        version = event.version
        if version <= group.high:
            group.stale += 1
            others.append(index)
            continue
        if group.replaces_whole:
            group.risen.append(group.high)
            others.append(group.winner)
            group.head = index
        else:
            kept.append(index)
        group.high, group.winner = version, index
    for group in keys.values():
        if isinstance(group, int):
            kept.append(group)
        else:
            kept.append(group.winner if group.replaces_whole else group.head)
    kept.sort()
    window.kept, window.others, window.groups = kept, others, groups


def every_event(events: Sequence[Event]) -> list[SkuWindow]:
    """The window per SKU with nothing collapsed: every event kept (the one-by-one reference,
    and what `EventApplier.apply` sends)."""
    by_sku: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        indexes = by_sku.get(event.sku)
        if indexes is None:
            by_sku[event.sku] = [index]
        else:
            indexes.append(index)
    return [SkuWindow(sku, indexes) for sku, indexes in by_sku.items()]
