"""`invalidation.collapse`: a collapsed window leaves the state one-by-one application leaves.

The pure core is checked against a model of the apply script's rule (dedupe by id per SKU,
version gates per (SKU, location), per SKU price and per SKU content, partial content upserts,
deletions): table-driven cases for what is kept, and a property over random windows with
copies, reordering and random stored versions. `test_apply.py` checks the same on real Redis.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invalidation.collapse import Answer, SkuWindow, Unsent, collapse, every_event
from invalidation.events import CatalogEvent, Event, InventoryEvent, PriceEvent
from tests.invalidation.support import WHEN

Status = Literal["applied", "duplicate", "stale", "unknown_sku"]


def inv(event_id: str, sku: str, location: str, units: int, version: int) -> InventoryEvent:
    return InventoryEvent(event_id, sku, location, units, version, WHEN)


def price(event_id: str, sku: str, cents: int, version: int) -> PriceEvent:
    return PriceEvent(event_id, sku, cents, "USD", version, WHEN)


def content(
    event_id: str, sku: str, version: int, *, title: str | None = None, brand: str | None = None
) -> CatalogEvent:
    return CatalogEvent(event_id, sku, version, WHEN, title=title, brand=brand)


def delete(event_id: str, sku: str, version: int) -> CatalogEvent:
    return CatalogEvent(event_id, sku, version, WHEN, op="delete")


@dataclass
class SkuState:
    """The apply script's view of one SKU (the fields a gate or a shopper reads)."""

    exists: bool = True
    units: dict[str, int] = field(default_factory=dict)
    stock_versions: dict[str, int] = field(default_factory=dict)
    price: int = 0
    price_version: int = 0
    fields: dict[str, str] = field(default_factory=dict)
    content_version: int = 0
    deleted: bool = False
    seen: list[str] = field(default_factory=list)

    def visible(self) -> tuple[object, ...]:
        """Everything but the remembered ids (which a collapse remembers fewer of)."""
        return (
            self.units, self.stock_versions, self.price, self.price_version, self.fields,
            self.content_version, self.deleted,
        )  # fmt: skip

    def before(self, event: Event) -> int:
        """The version the event's key holds now."""
        if isinstance(event, InventoryEvent):
            return self.stock_versions.get(event.location, 0)
        if isinstance(event, PriceEvent):
            return self.price_version
        return self.content_version


def apply_model(state: SkuState, events: Sequence[Event]) -> list[Status]:
    """One SKU's events of one call, one by one, as the apply script applies them (existence
    is read once per call, as the script reads it)."""
    statuses: list[Status] = []
    exists = state.exists and not state.deleted
    for event in events:
        status: Status = "stale"
        if event.event_id in state.seen:
            statuses.append("duplicate")
            continue
        if not exists:
            statuses.append("unknown_sku")
            continue
        if event.version > state.before(event):
            status = "applied"
            if isinstance(event, InventoryEvent):
                state.units[event.location] = event.available
                state.stock_versions[event.location] = event.version
            elif isinstance(event, PriceEvent):
                state.price, state.price_version = event.price_cents, event.version
            else:
                state.content_version = event.version
                if event.op == "delete":
                    state.deleted = True
                for name, value in (("title", event.title), ("brand", event.brand)):
                    if value is not None:
                        state.fields[name] = value
        state.seen.append(event.event_id)
        statuses.append(status)
    return statuses


def apply_collapsed(
    states: dict[str, SkuState], events: Sequence[Event], windows: Sequence[SkuWindow]
) -> dict[str, int]:
    """Apply only the kept events (the model standing in for Redis, answering the reporting
    heads) and count every event as the pipeline counts them."""
    counts = {"applied": 0, "duplicate": 0, "stale": 0, "unknown_sku": 0}
    letters = {"applied": "a", "duplicate": "d", "stale": "s", "unknown_sku": "u"}
    for window in windows:
        state = states[window.sku]
        missing = not state.exists or state.deleted
        # A reporting head is its key's first kept event: its key holds the stored version.
        answers = [
            Answer(
                state.before(events[g.head]),
                "".join("1" if events[i].event_id in state.seen else "0" for i in g.dropped),
            )
            for g in window.reporting()
        ]
        if not missing:  # the script remembers the unsent ids it did not know
            state.seen += [
                events[i].event_id
                for g in window.reporting()
                for i in g.dropped
                if events[i].event_id not in state.seen
            ]
        statuses = apply_model(state, [events[i] for i in window.kept])
        for status in statuses:
            counts[status] += 1
        unsent = window.classify("".join(letters[s] for s in statuses), missing, answers)
        counts["applied"] += unsent.applied
        counts["duplicate"] += unsent.duplicates
        counts["stale"] += unsent.stale
        counts["unknown_sku"] += len(unsent.unknown)
    return counts


def apply_one_by_one(states: dict[str, SkuState], events: Sequence[Event]) -> dict[str, int]:
    counts = {"applied": 0, "duplicate": 0, "stale": 0, "unknown_sku": 0}
    for window in every_event(events):
        for status in apply_model(states[window.sku], [events[i] for i in window.kept]):
            counts[status] += 1
    return counts


# -- What is kept ---------------------------------------------------------------------------

CASES: list[tuple[str, list[Event], list[int], list[int], int]] = [
    # (name, window, kept indexes, others, duplicates)
    ("one event is kept", [inv("a", "S", "l1", 3, 1)], [0], [], 0),
    (
        "the highest inventory version per location wins",
        [inv("a", "S", "l1", 3, 1), inv("b", "S", "l1", 2, 3), inv("c", "S", "l1", 1, 2)],
        [1], [0, 2], 0,
    ),
    (
        "locations are separate keys",
        [inv("a", "S", "l1", 3, 1), inv("b", "S", "l2", 2, 1), inv("c", "S", "l1", 1, 2)],
        [1, 2], [0], 0,
    ),
    (
        "of equal versions the first wins (the second is stale one by one)",
        [price("a", "S", 100, 4), price("b", "S", 200, 4)],
        [0], [1], 0,
    ),
    (
        "a copy in the window is a duplicate",
        [price("a", "S", 100, 4), price("a", "S", 100, 4)],
        [0], [1], 1,
    ),
    (
        "ids are remembered per SKU",
        [price("a", "S", 100, 4), price("a", "T", 100, 4)],
        [0, 1], [], 0,
    ),
    (
        "price and stock are separate keys of one SKU",
        [price("a", "S", 100, 1), inv("b", "S", "l1", 0, 1), price("c", "S", 90, 2)],
        [1, 2], [0], 0,
    ),
    (
        "content upserts that rise are all kept, in order (they write only what they carry)",
        [content("a", "S", 1, title="x"), content("b", "S", 3, brand="y"),
         content("c", "S", 2, title="z"), content("d", "S", 4, title="w")],
        [0, 1, 3], [2], 0,
    ),
    (
        "a deletion is a content event",
        [content("a", "S", 2, title="x"), delete("b", "S", 1), delete("c", "S", 3)],
        [0, 2], [1], 0,
    ),
    (
        "kept events stay in log order across keys",
        [inv("a", "S", "l1", 1, 1), delete("b", "S", 1), inv("c", "S", "l1", 2, 2)],
        [1, 2], [0], 0,
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "events", "kept", "others", "duplicates"), CASES)
def test_what_a_window_keeps(
    name: str, events: list[Event], kept: list[int], others: list[int], duplicates: int
) -> None:
    windows = collapse(events)
    assert sorted(i for w in windows for i in w.kept) == kept, name
    assert sorted(i for w in windows for i in w.others) == others, name
    assert sum(len(w.copies) for w in windows) == duplicates, name


def test_superseded_events_count_against_the_stored_version_and_remembered_ids() -> None:
    """Versions 2, 5, 1, 7 of one key: stored 4 means 2 and 1 were stale and 5 applied (then
    replaced); an id Redis remembers is a duplicate; a missing SKU makes the rest dead letters."""
    events: list[Event] = [inv("a", "S", "l1", 1, 2), inv("b", "S", "l1", 2, 5),
                           inv("c", "S", "l1", 3, 1), inv("d", "S", "l1", 4, 7)]  # fmt: skip
    [window] = collapse(events)
    assert window.kept == [3]
    [group] = window.reporting()
    assert (group.head, group.dropped) == (3, [0, 1, 2])

    def counted(before: int, remembered: str, missing: bool = False) -> tuple[int, ...]:
        u = window.classify("u" if missing else "a", missing, [Answer(before, remembered)])
        return (u.applied, u.duplicates, u.stale, *u.unknown)

    assert counted(4, "000") == (1, 0, 2)
    assert counted(0, "000") == (2, 0, 1)
    assert counted(9, "000") == (0, 0, 3)
    assert counted(4, "110") == (0, 2, 1)
    assert counted(0, "010", missing=True) == (0, 1, 0, 0, 2)
    with pytest.raises(ValueError, match="1 reporting keys"):
        window.classify("a", False, [])
    with pytest.raises(ValueError, match="2 remembered flags for 3 events"):
        window.classify("a", False, [Answer(0, "00")])


def test_copies_count_as_their_original() -> None:
    events: list[Event] = [price("a", "S", 1, 2), price("a", "S", 1, 2), price("b", "S", 1, 3)]
    [window] = collapse(events)
    assert (window.kept, list(window.copies)) == ([2], [(1, 0)])
    assert window.classify("a", False, [Answer(0, "0")]).duplicates == 1
    unknown = window.classify("u", True, [Answer(0, "0")])
    assert (unknown.duplicates, unknown.unknown) == (0, [0, 1])


def test_a_window_with_nothing_to_collapse_asks_nothing() -> None:
    events: list[Event] = [inv("a", "S", "l1", 1, 2), price("b", "S", 5, 1)]
    [window] = collapse(events)
    assert window.reporting() == []
    assert window.classify("aa", False, []) == Unsent()


# -- The property ---------------------------------------------------------------------------

SKUS = ("S", "T")
LOCATIONS = ("l1", "l2")


@st.composite
def distinct_events(draw: st.DrawFn) -> list[Event]:
    out: list[Event] = []
    for n in range(draw(st.integers(1, 14))):
        sku = draw(st.sampled_from(SKUS))
        version = draw(st.integers(1, 6))
        kind = draw(st.sampled_from(("inv", "inv", "price", "content", "delete")))
        if kind == "inv":
            loc = draw(st.sampled_from(LOCATIONS))
            out.append(inv(f"e{n}", sku, loc, draw(st.integers(0, 3)), version))
        elif kind == "price":
            out.append(price(f"e{n}", sku, draw(st.integers(1, 3)), version))
        elif kind == "content":
            title = draw(st.sampled_from((None, "x", "y")))
            brand = draw(st.sampled_from((None, "b", "c")))
            out.append(content(f"e{n}", sku, version, title=title, brand=brand))
        else:
            out.append(delete(f"e{n}", sku, version))
    return out


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[Event], dict[str, SkuState]]:
    """A window (copies, any order) and the state before it: random stored versions, and some
    of the window's events already applied by an earlier delivery (a redelivery)."""
    events = draw(distinct_events())
    copies = draw(st.lists(st.sampled_from(events), max_size=5))
    window = draw(st.permutations(events + copies))
    earlier = draw(st.lists(st.sampled_from(events), max_size=6))
    states = {}
    for sku in SKUS:
        states[sku] = SkuState(
            exists=draw(st.booleans()) or draw(st.booleans()),
            stock_versions={loc: draw(st.integers(0, 4)) for loc in LOCATIONS},
            price_version=draw(st.integers(0, 4)),
            content_version=draw(st.integers(0, 4)),
        )
        apply_model(states[sku], [e for e in earlier if e.sku == sku])
    return list(window), states


def _copy(states: dict[str, SkuState]) -> dict[str, SkuState]:
    return {sku: copy.deepcopy(state) for sku, state in states.items()}


@settings(max_examples=400, deadline=None)
@given(case=windows())
def test_a_collapsed_window_leaves_the_state_and_counts_of_one_by_one_application(
    case: tuple[list[Event], dict[str, SkuState]],
) -> None:
    events, start = case
    one_by_one, collapsed = _copy(start), _copy(start)
    expected = apply_one_by_one(one_by_one, events)
    counted = apply_collapsed(collapsed, events, collapse(events))
    for sku in SKUS:
        assert collapsed[sku].visible() == one_by_one[sku].visible(), sku
        assert set(collapsed[sku].seen) == set(one_by_one[sku].seen), "the same ids remembered"
    assert counted == expected
    assert sum(counted.values()) == len(events), "every event is counted once"


@settings(max_examples=200, deadline=None)
@given(case=windows())
def test_every_event_is_kept_or_accounted_for_exactly_once(
    case: tuple[list[Event], dict[str, SkuState]],
) -> None:
    events, _ = case
    indexes = [i for w in collapse(events) for i in (*w.kept, *w.others)]
    assert sorted(indexes) == list(range(len(events)))
