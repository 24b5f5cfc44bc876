"""`invalidation.demo_events.DemoEventStream`: deterministic, valid, and mixed as documented."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from invalidation.demo_events import STOCK_NOISE_ONLY, DemoEventStream, EventMix
from invalidation.events import Event, InventoryEvent, PriceEvent, encode_event, parse_event
from invalidation.events import topic_of as topic_of_event
from origin.core.demo_catalog import LOCATIONS, generate_catalog

PRODUCTS = generate_catalog(42, 400).products
CHANGES = 6000


def changes(stream: DemoEventStream, n: int) -> list[list[Event]]:
    return [stream.next_change() for _ in range(n)]


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    first = list(itertools.islice(DemoEventStream(PRODUCTS, seed=3), 800))
    again = list(itertools.islice(DemoEventStream(PRODUCTS, seed=3), 800))
    other = list(itertools.islice(DemoEventStream(PRODUCTS, seed=4), 800))
    assert first == again
    assert first != other


def test_every_event_is_schema_valid_and_round_trips() -> None:
    stream = DemoEventStream(PRODUCTS, seed=11, version_base=1_700_000_000_000_000)
    for event in itertools.islice(stream, 3000):
        assert parse_event(topic_of_event(event), encode_event(event)) == event


def test_ids_are_unique_and_versions_increase_per_sku_and_kind() -> None:
    stream = DemoEventStream(PRODUCTS, seed=5, version_base=1000, id_prefix="run-a")
    events = list(itertools.islice(stream, 4000))
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("run-a-") for i in ids)
    last: dict[tuple[str, str], int] = {}
    for e in events:
        kind = "stock" if isinstance(e, InventoryEvent) else "price"
        assert e.version > last.get((e.sku, kind), 1000), e
        last[(e.sku, kind)] = e.version


def test_mix_matches_the_configured_probabilities() -> None:
    stream = DemoEventStream(PRODUCTS, seed=9)
    kinds: Counter[str] = Counter()
    hot = {p.sku for p in PRODUCTS[:200]}
    on_hot = 0
    for change in changes(stream, CHANGES):
        on_hot += change[0].sku in hot
        first = change[0]
        if isinstance(first, PriceEvent):
            kinds["promo" if first.promo else "price"] += 1
        elif len(change) == len(LOCATIONS) and all(
            isinstance(e, InventoryEvent) and e.available == 0 for e in change
        ):
            kinds["sell_out"] += 1
        else:
            assert len(change) == 1
            kinds["stock"] += 1
    mix = EventMix()
    for kind, p in (("price", mix.price), ("promo", mix.promo), ("sell_out", mix.sell_out)):
        share = kinds[kind] / CHANGES
        assert abs(share - p) < 4 * (p * (1 - p) / CHANGES) ** 0.5 + 0.002, (kind, share)
    # Half the changes pick a hot SKU; the other half pick any SKU (200 of 400 are hot).
    assert abs(on_hot / CHANGES - 0.75) < 0.03


def test_stock_noise_only_moves_one_location_by_a_few_units() -> None:
    stream = DemoEventStream(PRODUCTS, seed=1, mix=STOCK_NOISE_ONLY)
    state = {p.sku: dict(p.locations) for p in PRODUCTS}
    for change in changes(stream, 2000):
        assert len(change) == 1
        event = change[0]
        assert isinstance(event, InventoryEvent)
        before = state[event.sku][event.location]
        assert event.available >= 0
        assert -3 <= event.available - before <= 2
        assert event.available != before or before == 0, "noise must move or sit at zero"
        state[event.sku][event.location] = event.available


def test_sell_out_zeroes_every_location_with_new_versions() -> None:
    stream = DemoEventStream(PRODUCTS, seed=2, version_base=50)
    sku = PRODUCTS[7].sku
    events = stream.sell_out(sku)
    assert sorted((e.location, e.available) for e in events if isinstance(e, InventoryEvent)) == [
        (loc, 0) for loc in sorted(LOCATIONS)
    ]
    assert [e.version for e in events] == [51, 52, 53]


@pytest.mark.parametrize("hot", [1, 10])
def test_hot_share_one_only_touches_hot_skus(hot: int) -> None:
    stream = DemoEventStream(PRODUCTS, seed=4, hot_skus=hot, mix=EventMix(hot_share=1.0))
    touched = {e.sku for e in itertools.islice(stream, 1000)}
    assert touched <= {p.sku for p in PRODUCTS[:hot]}
