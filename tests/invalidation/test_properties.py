"""Property: delivery order, duplicates and batching never change the outcome.

A clean sequence of events applied in one batch, and the same events shuffled (any per-SKU
reordering), with duplicates injected and split into arbitrary batches, must leave identical
product state and identical stored bundle content hashes, equal to what the events imply and
to a from-scratch rebuild. Runs against the real Redis; each example starts from the same
seeded snapshot. The pipeline covers three segments (18 bundles) to keep examples fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invalidation.events import Event, InventoryEvent, PriceEvent
from invalidation.records import Record
from origin.core.catalog import Product
from origin.core.demo_catalog import LOCATIONS, PROMOS, generate_catalog
from tests.invalidation.support import (
    CATALOG_SEED,
    CATALOG_SKUS,
    WHEN,
    Snapshot,
    World,
    expected_product_fields,
    record_of,
    restore_snapshot,
    state_differences,
)

SEGMENTS = ("everyone", "bargain-hunters", "tech-enthusiasts")
# The most popular SKUs (shown by many bundles) and a few from the long tail, so changes both
# move SKUs in and out of bundles and touch none.
_BY_POPULARITY = sorted(
    generate_catalog(CATALOG_SEED, CATALOG_SKUS).products, key=lambda p: (-p.popularity, p.sku)
)
POOL: tuple[Product, ...] = tuple(_BY_POPULARITY[i] for i in (0, 1, 2, 3, 5, 8, 13, 21, 55, 233))
AVAILABLE = (0, 0, 1, 4, 5, 6, 7, 25, 60)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A clean event sequence and a messy delivery of the same events."""

    events: tuple[Event, ...]
    clean: tuple[Record, ...]
    batches: tuple[tuple[Record, ...], ...]


def _events(drawn: Sequence[tuple[Product, str, str | int, int | str | None]]) -> list[Event]:
    versions: dict[tuple[str, str], int] = {}
    events: list[Event] = []
    for n, (product, kind, a, b) in enumerate(drawn):
        key = (product.sku, kind)
        version = versions[key] = versions.get(key, 0) + 1
        if kind == "stock":
            assert isinstance(a, str)
            assert isinstance(b, int)
            events.append(InventoryEvent(f"e{n}", product.sku, a, b, version, WHEN))
        else:
            assert isinstance(a, int)
            assert b is None or isinstance(b, str)
            cents = max(99, product.price_cents + a)
            compare_at = product.price_cents if b else None
            events.append(
                PriceEvent(f"e{n}", product.sku, cents, "USD", version, WHEN, compare_at, b)
            )
    return events


stock_change = st.tuples(
    st.sampled_from(POOL), st.just("stock"), st.sampled_from(LOCATIONS), st.sampled_from(AVAILABLE)
)
price_change = st.tuples(
    st.sampled_from(POOL),
    st.just("price"),
    st.integers(-300, 300),
    st.sampled_from((None, *PROMOS)),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    drawn = draw(
        st.lists(st.one_of(stock_change, stock_change, price_change), min_size=1, max_size=30)
    )
    events = _events(drawn)
    clean = [record_of(e, i, timestamp_ms=1_000 + i) for i, e in enumerate(events)]
    messy = list(draw(st.permutations(clean)))
    for duplicate in draw(st.lists(st.sampled_from(clean), max_size=10)):
        messy.insert(draw(st.integers(0, len(messy))), duplicate)
    cuts = draw(st.sets(st.integers(1, len(messy) - 1), max_size=3)) if len(messy) > 1 else set()
    bounds = [0, *sorted(cuts), len(messy)]
    batches = tuple(tuple(messy[a:b]) for a, b in itertools.pairwise(bounds))
    return Scenario(tuple(events), tuple(clean), batches)


async def outcome(
    world: World, snapshot: Snapshot, batches: tuple[tuple[Record, ...], ...]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    await restore_snapshot(world.redis, snapshot)
    pipeline = world.pipeline()
    for batch in batches:
        await pipeline.process(batch)
    return await world.product_fields(), await world.content_hashes()


@pytest.mark.timeout(300)  # passing takes seconds; shrinking a failure may take minutes
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
async def test_order_duplicates_and_batching_do_not_change_the_outcome(
    world: World, seeded_snapshot: Snapshot, scenario: Scenario
) -> None:
    small = world.narrowed(SEGMENTS)
    clean_state, clean_hashes = await outcome(small, seeded_snapshot, (scenario.clean,))
    messy_state, messy_hashes = await outcome(small, seeded_snapshot, scenario.batches)

    assert (
        state_differences(messy_state, expected_product_fields(world.products, scenario.events))
        == []
    )
    assert messy_state == clean_state
    assert messy_hashes == clean_hashes
    assert await small.consistency_problems() == []
