"""`invalidation.apply.EventApplier` on a real Redis: dedupe, version gating, what is visible."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from invalidation.apply import SEEN_CAP, EventApplier
from invalidation.collapse import collapse
from invalidation.events import CatalogEvent, Event, InventoryEvent, PriceEvent
from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.errors import StoreUnavailable
from shelfedge.localstack import RedisServer
from tests.invalidation.support import WHEN, Snapshot, World, restore_snapshot


def stock(event_id: str, sku: str, location: str, available: int, version: int) -> InventoryEvent:
    return InventoryEvent(event_id, sku, location, available, version, WHEN)


def price(
    event_id: str,
    sku: str,
    cents: int,
    version: int,
    compare_at: int | None = None,
    promo: str | None = None,
) -> PriceEvent:
    return PriceEvent(event_id, sku, cents, "USD", version, WHEN, compare_at, promo)


async def statuses(applier: EventApplier, events: Sequence[Event]) -> list[str]:
    return [o.status for o in await applier.apply(events)]


def well_stocked(world: World) -> str:
    """A SKU with at least 20 units at every location (count noise never changes its state)."""
    return next(p.sku for p in world.products if min(p.locations.values()) >= 20)


async def test_same_event_twice_is_a_duplicate(world: World, redis_client: RedisLike) -> None:
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    event = stock("e-1", sku, "store-001", 11, 5)
    assert await statuses(applier, [event]) == ["applied"]
    assert await statuses(applier, [event]) == ["duplicate"]
    other = stock("e-2", sku, "store-001", 12, 6)
    assert await statuses(applier, [other, other]) == ["applied", "duplicate"]
    product = await world.store.product(sku)
    assert product is not None
    assert product.locations["store-001"] == 12


async def test_inventory_is_gated_per_location(world: World, redis_client: RedisLike) -> None:
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    before = world.product(sku)
    outcome = await statuses(
        applier,
        [
            stock("a", sku, "store-001", 40, 10),
            stock("b", sku, "warehouse-east", 41, 3),  # lower version, other location: applies
            stock("c", sku, "store-001", 1, 9),  # older than 10 at this location: stale
            stock("d", sku, "store-001", 2, 10),  # equal version, new id: stale
            stock("e", sku, "warehouse-east", 42, 4),
        ],
    )
    assert outcome == ["applied", "applied", "stale", "stale", "applied"]
    product = await world.store.product(sku)
    assert product is not None
    assert product.locations == {**before.locations, "store-001": 40, "warehouse-east": 42}
    assert product.stock == sum(product.locations.values())
    assert product.stock_version == 10


async def test_price_is_gated_per_sku_independently_of_stock(
    world: World, redis_client: RedisLike
) -> None:
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    outcome = await statuses(
        applier,
        [
            price("p1", sku, 1500, 7),
            price("p2", sku, 1400, 6),  # reordered: older than 7
            stock("s1", sku, "store-001", 25, 2),  # stock versions are their own sequence
            price("p3", sku, 1300, 8, compare_at=1999, promo="2 for 1"),
        ],
    )
    assert outcome == ["applied", "stale", "applied", "applied"]
    product = await world.store.product(sku)
    assert product is not None
    assert (product.price_cents, product.compare_at_cents, product.promo) == (1300, 1999, "2 for 1")
    assert (product.price_version, product.stock_version) == (8, 2)


async def test_reordered_events_end_in_the_newest_state(
    world: World, redis_client: RedisLike
) -> None:
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    in_order = [stock(f"o{v}", sku, "store-001", 20 + v, v) for v in range(1, 6)]
    assert await statuses(applier, in_order[::-1]) == ["applied"] + ["stale"] * 4
    product = await world.store.product(sku)
    assert product is not None
    assert (product.locations["store-001"], product.stock_version) == (25, 5)


async def test_redelivery_beyond_the_dedupe_window_is_stale(
    world: World, redis_client: RedisLike
) -> None:
    """The seen-id list is capped; version gating still stops an old redelivery."""
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    events = [stock(f"w{v}", sku, "store-001", v % 50, v) for v in range(1, SEEN_CAP + 11)]
    await applier.apply(events)
    assert await redis_client.llen(keys.event_seen_key(sku)) == SEEN_CAP
    assert await redis_client.ttl(keys.event_seen_key(sku)) > 0
    assert await statuses(applier, [events[0]]) == ["stale"]
    product = await world.store.product(sku)
    assert product is not None
    assert product.locations["store-001"] == events[-1].available


@pytest.mark.parametrize("again", [1, 2, 3, 8])
async def test_redelivered_ids_are_duplicates_however_many_share_a_call(
    world: World, redis_client: RedisLike, again: int
) -> None:
    """Few events of a SKU in a call ask for each id; more read the recent ids once: the same
    answers either way, for redelivered ids mixed with new ones."""
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    first = [stock(f"r{again}-{n}", sku, "store-001", 20 + n, 10 + n) for n in range(8)]
    assert await statuses(applier, first) == ["applied"] * 8
    fresh = stock(f"r{again}-new", sku, "store-002", 33, 50)
    redelivered = first[:again]
    outcome = await statuses(applier, [*redelivered, fresh, redelivered[0]])
    assert outcome == ["duplicate"] * again + ["applied", "duplicate"]


async def test_a_hot_sku_with_thousands_of_events_in_one_batch(
    world: World, redis_client: RedisLike
) -> None:
    """One script call carries every event of a SKU; its writes are chunked, its state exact."""
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    locations = sorted(world.product(sku).locations)
    events: list[Event] = [
        stock(f"h{n}", sku, locations[n % len(locations)], 20 + n % 7, 100 + n) for n in range(2500)
    ]
    events += [events[10], events[-1], stock("h-old", sku, locations[0], 1, 99)]
    outcome = await statuses(applier, events)
    assert outcome == ["applied"] * 2500 + ["duplicate", "duplicate", "stale"]
    product = await world.store.product(sku)
    assert product is not None
    last = {e.location: e for e in events[:2500] if isinstance(e, InventoryEvent)}
    assert product.locations == {loc: e.available for loc, e in last.items()}
    assert product.stock == sum(product.locations.values())
    assert product.stock_version == 100 + 2499
    seen = await redis_client.lrange(keys.event_seen_key(sku), 0, -1)
    assert seen[:2] == [b"h-old", b"h2499"]
    assert len(seen) == SEEN_CAP


async def test_unknown_sku_changes_nothing(world: World, redis_client: RedisLike) -> None:
    applier = EventApplier(redis_client)
    before = await redis_client.dbsize()
    outcome = await applier.apply(
        [stock("u1", "NOPE-1", "store-001", 3, 1), price("u2", "NOPE-1", 100, 1)]
    )
    assert [(o.status, o.visible_change, o.sold_out) for o in outcome] == [
        ("unknown_sku", False, False)
    ] * 2
    assert await redis_client.dbsize() == before
    assert not await redis_client.exists(keys.product_key("NOPE-1"))


async def test_visibility_of_stock_changes(world: World, redis_client: RedisLike) -> None:
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    locations = sorted(world.product(sku).locations)
    first, *others = locations
    count_only = await applier.apply([stock("c1", sku, first, 21, 1)])
    assert [(o.status, o.visible_change, o.sold_out) for o in count_only] == [
        ("applied", False, False)
    ]
    sell_out = await applier.apply(
        [stock(f"z{i}", sku, loc, 0, 10 + i) for i, loc in enumerate(locations)]
    )
    # Only the event that takes the total to zero is visible, and it is the sell-out.
    assert [(o.visible_change, o.sold_out) for o in sell_out] == [(False, False)] * (
        len(locations) - 1
    ) + [(True, True)]
    low = await applier.apply([stock("l1", sku, first, 3, 20)])
    assert [(o.visible_change, o.sold_out) for o in low] == [(True, False)]  # restock to low
    more = await applier.apply([stock("l2", sku, others[0], 1, 21)])
    assert [(o.visible_change, o.sold_out) for o in more] == [(False, False)]  # still low
    back = await applier.apply([stock("l3", sku, others[0], 30, 22)])
    assert [(o.visible_change, o.sold_out) for o in back] == [(True, False)]  # in stock
    again = await applier.apply(
        [stock("l4", sku, first, 0, 23), stock("l5", sku, others[0], 0, 24)]
    )
    assert [(o.visible_change, o.sold_out) for o in again] == [(False, False), (True, True)]


async def test_visibility_of_price_changes(world: World, redis_client: RedisLike) -> None:
    applier = EventApplier(redis_client)
    p = world.products[3]
    unchanged = price("q1", p.sku, p.price_cents, 1, p.compare_at_cents, p.promo)
    outcome = await applier.apply(
        [
            unchanged,
            price("q2", p.sku, p.price_cents + 100, 2, p.compare_at_cents, p.promo),
            price("q3", p.sku, p.price_cents + 100, 3, 99_999, p.promo),
            price("q4", p.sku, p.price_cents + 100, 4, 99_999, "Members -10%"),
            price("q5", p.sku, p.price_cents + 100, 5, 99_999, "Members -10%"),
        ]
    )
    assert [(o.status, o.visible_change) for o in outcome] == [
        ("applied", False),
        ("applied", True),
        ("applied", True),
        ("applied", True),
        ("applied", False),
    ]


async def test_largest_allowed_version_is_stored_readably(
    world: World, redis_client: RedisLike
) -> None:
    applier = EventApplier(redis_client)
    sku = well_stocked(world)
    top = 2**53 - 1
    assert await statuses(
        applier, [stock("v1", sku, "store-001", 22, top), price("v2", sku, 999, top)]
    ) == ["applied", "applied"]
    product = await world.store.product(sku)
    assert product is not None
    assert (product.stock_version, product.price_version) == (top, top)
    assert await statuses(applier, [stock("v3", sku, "store-001", 23, top - 1)]) == ["stale"]


async def test_a_failed_apply_gives_its_connection_back(fresh_redis_server: RedisServer) -> None:
    """Redis down while the batch's scripts load: StoreUnavailable, and no pipeline left
    holding a pooled connection (redis-py keeps it unless the pipeline is reset)."""
    redis = Redis.from_url(fresh_redis_server.url)
    try:
        await redis.ping()
        fresh_redis_server.stop()
        with pytest.raises(StoreUnavailable, match="redis unavailable during apply events"):
            await EventApplier(redis).apply([stock("f1", "SKU-00001", "store-001", 1, 1)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert leaks == []
    finally:
        await redis.aclose()


async def test_skus_of_one_bucket_apply_in_one_call_each_in_its_own_order(
    world: World, redis_client: RedisLike
) -> None:
    """Interleaved events of two catalog SKUs and an unknown one that share a key bucket: each
    SKU's events are gated in its own log order, and the unknown SKU touches nothing."""
    by_bucket: dict[int, list[str]] = {}
    for p in world.products:
        by_bucket.setdefault(keys.sku_bucket(p.sku), []).append(p.sku)
    first, second = next(skus[:2] for skus in by_bucket.values() if len(skus) >= 2)
    bucket = keys.sku_bucket(first)
    unknown = next(f"NOPE-{n}" for n in range(10_000) if keys.sku_bucket(f"NOPE-{n}") == bucket)
    before = await redis_client.dbsize()
    outcome = await statuses(
        EventApplier(redis_client),
        [
            stock("b1", first, "store-001", 30, 5),
            stock("b2", second, "store-001", 31, 5),
            stock("b3", unknown, "store-001", 1, 1),
            stock("b4", first, "store-001", 32, 4),  # stale for `first` only
            stock("b5", second, "store-001", 33, 6),
            stock("b1", second, "store-001", 34, 7),  # another SKU's event id: not a duplicate
        ],
    )
    assert outcome == ["applied", "applied", "unknown_sku", "stale", "applied", "applied"]
    assert await redis_client.dbsize() == before + 2  # each known SKU's seen list
    products = [await world.store.product(sku) for sku in (first, second)]
    assert [p.locations["store-001"] if p else None for p in products] == [30, 34]


# -- A collapsed window against one-by-one application, on the real Redis ----------------------


def _window_events(world: World, drawn: list[tuple[int, str, int, int]]) -> list[Event]:
    """Events over three SKUs (one not in the catalog); `drawn`: (sku, kind, version, value)."""
    skus = [p.sku for p in world.products[:2]] + ["NOT-IN-CATALOG"]
    events: list[Event] = []
    for n, (which, kind, version, value) in enumerate(drawn):
        sku = skus[which]
        if kind == "stock":
            events.append(stock(f"w{n}", sku, f"store-00{1 + value % 2}", value, version))
        elif kind == "price":
            events.append(price(f"w{n}", sku, 1_000 + value, version))
        else:
            title = f"Title {value}" if value % 2 else None
            brand = f"Brand {value}" if value % 3 else None
            events.append(CatalogEvent(f"w{n}", sku, version, WHEN, title=title, brand=brand))
    return events


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[int, str, int, int]], list[int], list[int]]:
    """Drawn events, which of them an earlier window applied, and this window's order of them
    (copies included), as indexes."""
    drawn = draw(
        st.lists(
            st.tuples(
                st.sampled_from((0, 0, 1, 1, 2)),
                st.sampled_from(("stock", "stock", "price", "content")),
                st.integers(1, 5),
                st.integers(0, 6),
            ),
            min_size=1,
            max_size=24,
        )
    )
    n = len(drawn)
    earlier = draw(st.lists(st.integers(0, n - 1), max_size=4))
    copies = draw(st.lists(st.integers(0, n - 1), max_size=4))
    order = draw(st.permutations([*range(n), *copies]))
    return drawn, earlier, list(order)


@pytest.mark.timeout(300)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(delivery=deliveries())
async def test_a_collapsed_window_leaves_what_one_by_one_application_leaves(
    world: World,
    seeded_snapshot: Snapshot,
    delivery: tuple[list[tuple[int, str, int, int]], list[int], list[int]],
) -> None:
    """The same window, with copies and reordering, after an earlier window of the same keys:
    collapsed (the pipeline's way) and sent whole leave identical product documents and count
    applied, duplicate, stale and unknown-SKU events alike."""
    drawn, earlier_at, order = delivery
    events = _window_events(world, drawn)
    earlier = [events[i] for i in earlier_at]
    window = [events[i] for i in order]
    outcomes: list[
        tuple[dict[str, dict[str, str]], tuple[int, ...], dict[str, set[bytes | str]]]
    ] = []
    for collapsed in (True, False):
        await restore_snapshot(world.redis, seeded_snapshot)
        applier = EventApplier(world.redis)
        await applier.apply(earlier)
        windows = collapse(window) if collapsed else None
        results = await applier.apply_by_sku(window, windows)
        unknown = sum(len(r.unknown()) for r in results)
        applied = sum(r.applied for r in results)
        duplicates = sum(r.duplicates for r in results)
        stale = sum(r.stale for r in results)
        assert applied + duplicates + stale + unknown == len(window), "every event counted once"
        remembered = {
            sku: set(await world.redis.lrange(keys.event_seen_key(sku), 0, -1))
            for sku in {e.sku for e in window}
        }
        outcomes.append(
            (await world.product_fields(), (applied, duplicates, stale, unknown), remembered)
        )
    assert outcomes[0] == outcomes[1]
