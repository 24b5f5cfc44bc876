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
is each key's stored version before the window and which ids it has seen: the first kept event
of a key with events not sent asks for both (`KeyGroup.reports`: the version, and which of
those events' ids are remembered), so every event is counted as the one-by-one application
would count it (`SkuWindow.classify`: a duplicate when its id was seen, a dead letter when the
SKU is not in the catalog, applied when a new high above the stored version, stale otherwise).

The ids of events not sent are remembered all the same (the applier records them with the
head's), so a later redelivery of one is a duplicate, as after one-by-one application.

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
    """Window indexes of superseded events that were a new high when they came: applied one by
    one exactly when above the key's stored version."""
    dropped: list[int] = field(default_factory=list)
    """Window indexes of this key's events not sent, in log order (their ids go with the head,
    to be looked up among the SKU's remembered ids)."""

    @property
    def reports(self) -> bool:
        """Whether the head must report the key's stored version and which of `dropped` the SKU
        remembers (some event of the key is not sent)."""
        return bool(self.dropped)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the applier reports for a reporting head."""

    before: int
    """The version the key held before the head."""
    remembered: str
    """Per `KeyGroup.dropped` event, '1' when the SKU remembers its id, else '0'."""


@dataclass(slots=True)
class Unsent:
    """How the events a collapse did not send count, as one-by-one application counts them."""

    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    unknown: list[int] = field(default_factory=list)
    """Window indexes of events naming a SKU that is not in the catalog: dead letters."""


class SkuWindow:
    """One SKU's events in a window, collapsed (a plain slotted class: one is made per SKU of
    every window; a SKU with one event shares the empty defaults)."""

    __slots__ = ("copies", "groups", "kept", "others", "sku", "versions")

    def __init__(self, sku: str, kept: list[int]) -> None:
        self.sku = sku
        self.kept = kept
        """Window indexes of the events to apply, in log order."""
        self.others: Sequence[int] = ()
        """Window indexes of the events not sent (superseded and duplicates): still
        dead-lettered with their own coordinates when the SKU is unknown, still counted in its
        purge's age."""
        self.copies: Sequence[tuple[int, int]] = ()
        """(copy, original): window indexes of copies of an event of this SKU earlier in the
        window, and of that event."""
        self.versions: dict[int, int] = {}
        """The version of each event not sent, by window index."""
        self.groups: Sequence[KeyGroup] = ()
        """The keys with more than one event in the window."""

    def reporting(self) -> list[KeyGroup]:
        """The groups whose head reports, in the order of their heads in `kept` (the order the
        applier answers in)."""
        heads = {g.head: g for g in self.groups if g.reports}
        return [heads[i] for i in self.kept if i in heads]

    def classify(self, statuses: str, missing: bool, answers: Sequence[Answer]) -> Unsent:
        """Count the events not sent, from what the applier answered: `statuses` has one letter
        per kept event ('u' unknown SKU, 'd' duplicate, anything else processed), `missing`
        says the SKU is not in the catalog, `answers` come in `reporting()` order.

        A remembered id is a duplicate (its version is at most the stored one); otherwise an
        event of a missing SKU is unknown; otherwise a superseded new high above the stored
        version was applied (then replaced) and the rest is stale. An in-window copy counts as
        its original did when that was unknown, and as a duplicate otherwise.
        """
        reporting = self.reporting()
        if len(answers) != len(reporting):
            raise ValueError(
                f"SKU {self.sku!r}: {len(answers)} answers for {len(reporting)} reporting keys"
            )
        out = Unsent()
        unknown: set[int] = {i for i, s in zip(self.kept, statuses, strict=True) if s == "u"}
        for group, answer in zip(reporting, answers, strict=True):
            if len(answer.remembered) != len(group.dropped):
                raise ValueError(
                    f"SKU {self.sku!r}: {len(answer.remembered)} remembered flags for "
                    f"{len(group.dropped)} events"
                )
            risen = set(group.risen)
            for index, flag in zip(group.dropped, answer.remembered, strict=True):
                if flag == "1":
                    out.duplicates += 1
                elif missing:
                    unknown.add(index)
                elif index in risen and self.versions[index] > answer.before:
                    out.applied += 1
                else:
                    out.stale += 1
        for copy, original in self.copies:
            if original in unknown:
                unknown.add(copy)
            else:
                out.duplicates += 1
        out.unknown = sorted(unknown.difference(self.kept))
        return out


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
    copies: list[tuple[int, int]] = []
    groups: list[KeyGroup] = []
    keys: dict[str, int | KeyGroup] = {}
    """Per key, its only event so far, or its group once it has a second one."""
    ids: dict[str, int] = {}
    for index in indexes:
        event = events[index]
        original = ids.get(event.event_id)
        if original is not None:
            copies.append((index, original))
            others.append(index)
            continue
        ids[event.event_id] = index
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
            group.dropped.append(index)
            others.append(index)
            continue
        if group.replaces_whole:
            group.risen.append(group.winner)
            group.dropped.append(group.winner)
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
            group.dropped.sort()
    kept.sort()
    window.kept, window.others, window.groups, window.copies = kept, others, groups, copies
    window.versions = {i: events[i].version for i in others}


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
