"""Anchored bundles: the candidate choice (pure, table-driven) and the build-on-request store
against a real Redis (imported list first, similarity fallback, writes only on change, the cap
on hot anchors)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.asyncio import Redis

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from origin.core import keys
from origin.core.anchored import anchored_candidates, similar_products, similarity
from origin.core.anchored_bundles import AnchoredBundles
from origin.core.builder import BundleBuilder
from origin.core.catalog import Product
from origin.core.envelope import open_envelope
from origin.core.list_store import ListStore
from origin.core.lists import ImportedList, RankedItem
from origin.core.redis_text import as_text
from origin.core.store import Store


def product(
    sku: str,
    category: str = "audio",
    brand: str = "Acme",
    price: int = 1000,
    *,
    stock: int = 10,
    popularity: float = 0.5,
) -> Product:
    return Product(
        sku, f"Product {sku}", brand, category, price, None, "USD", None, stock, popularity, 0.3
    )


ANCHOR = product("A", "audio", "Acme", 1000)
CATALOG = (
    ANCHOR,
    product("SAME-ALL", "audio", "Acme", 1000),
    product("SAME-CAT-CHEAP", "audio", "Other", 100),
    product("SAME-CAT-CLOSE", "audio", "Other", 900),
    product("SAME-BRAND", "books", "Acme", 1000),
    product("UNRELATED", "books", "Other", 1000),
    product("SOLD-OUT", "audio", "Acme", 1000, stock=0),
)


@pytest.mark.parametrize(
    ("other", "positive"),
    [
        (product("X", "audio", "Acme", 1000), True),
        (product("X", "books", "Acme", 1000), True),
        (product("X", "audio", "Zed", 1000), True),
        (product("X", "books", "Zed", 1000), False),
    ],
)
def test_similarity_needs_a_shared_category_or_brand(other: Product, positive: bool) -> None:
    assert (similarity(ANCHOR, other) > 0) is positive


def test_similar_products_rank_category_then_brand_then_price_and_drop_anchor_and_sold_out() -> (
    None
):
    ranked = [p.sku for p, _ in similar_products(ANCHOR, CATALOG, 10)]
    assert ranked == ["SAME-ALL", "SAME-CAT-CLOSE", "SAME-CAT-CHEAP", "SAME-BRAND"]
    assert [p.sku for p, _ in similar_products(ANCHOR, CATALOG, 2)] == [
        "SAME-ALL",
        "SAME-CAT-CLOSE",
    ]


PRODUCTS = {p.sku: p for p in CATALOG}


@pytest.mark.parametrize(
    ("imported", "learned", "source", "head"),
    [
        (None, None, "similar", ["SAME-ALL", "SAME-CAT-CLOSE"]),
        ([RankedItem("UNRELATED", 0.9)], None, "imported", ["UNRELATED", "SAME-ALL"]),
        (None, [RankedItem("SAME-BRAND", 0.7)], "learned", ["SAME-BRAND", "SAME-ALL"]),
        (
            [RankedItem("UNRELATED", 0.9)],
            [RankedItem("SAME-BRAND", 0.7)],
            "imported",
            ["UNRELATED", "SAME-ALL"],
        ),
        ([RankedItem("A", 1.0), RankedItem("SOLD-OUT", 0.9)], None, "imported", ["SAME-ALL"]),
        ([], None, "similar", ["SAME-ALL", "SAME-CAT-CLOSE"]),
    ],
)
def test_candidate_sources_in_order_of_preference(
    imported: list[RankedItem] | None,
    learned: list[RankedItem] | None,
    source: str,
    head: list[str],
) -> None:
    chosen = anchored_candidates(ANCHOR, imported, learned, PRODUCTS, CATALOG, 10)
    assert chosen.source == source
    skus = [p.sku for p, _ in chosen.ranked]
    assert skus[: len(head)] == head
    assert "A" not in skus
    assert "SOLD-OUT" not in skus
    scores = [v for _, v in chosen.ranked]
    assert scores == sorted(scores, reverse=True)


# --- against Redis ------------------------------------------------------------------------


@pytest.fixture
async def anchored_store(redis_client: Redis) -> tuple[Store, AnchoredBundles]:
    store = Store(redis_client, 5.0)
    await store.load_catalog(list(CATALOG), [])
    return store, AnchoredBundles(store, BundleBuilder(load_slots()), max_hot=2)


KEY = FragmentKey.anchored("product-cross-sell", "A")


async def test_similarity_fallback_is_built_stored_and_tagged_with_the_anchor(
    anchored_store: tuple[Store, AnchoredBundles],
) -> None:
    store, anchored = anchored_store
    built = await anchored.envelope(KEY)
    assert built is not None
    assert built.changed
    assert built.source == "similar"
    envelope = open_envelope(built.envelope)
    bundle = decode_bundle(envelope.body)
    assert bundle.key == KEY
    assert [c.sku for c in bundle.candidates] == [
        "SAME-ALL", "SAME-CAT-CLOSE", "SAME-CAT-CHEAP", "SAME-BRAND",
    ]  # fmt: skip
    assert "sku:A" in bundle.tags
    assert "sku:SAME-ALL" in bundle.tags
    assert not any(t.startswith("segment:") for t in bundle.tags)
    assert await store.get_envelope(KEY) == built.envelope
    again = await anchored.envelope(KEY)
    assert again is not None
    assert not again.changed
    assert again.envelope == built.envelope


async def test_an_imported_anchor_list_leads_and_a_new_list_bumps_the_version(
    anchored_store: tuple[Store, AnchoredBundles],
) -> None:
    store, anchored = anchored_store
    first = await anchored.envelope(KEY)
    assert first is not None
    lists = ListStore(store.redis)
    items = (RankedItem("UNRELATED", 1.0), RankedItem("SAME-BRAND", 0.5))
    await lists.put_many([ImportedList("anchor", "A", "recommended", 1, items)])
    built = await anchored.envelope(KEY)
    assert built is not None
    assert built.changed
    assert built.source == "imported"
    bundle = decode_bundle(open_envelope(built.envelope).body)
    assert [c.sku for c in bundle.candidates][:3] == ["UNRELATED", "SAME-BRAND", "SAME-ALL"]
    assert bundle.version == decode_bundle(open_envelope(first.envelope).body).version + 1


async def test_an_unknown_anchor_builds_nothing(
    anchored_store: tuple[Store, AnchoredBundles],
) -> None:
    store, anchored = anchored_store
    assert await anchored.envelope(FragmentKey.anchored("product-cross-sell", "NOPE")) is None
    assert await store.redis.exists(keys.HOT_ANCHORS_KEY) == 0


async def test_per_segment_slot_is_not_anchored(
    anchored_store: tuple[Store, AnchoredBundles],
) -> None:
    _, anchored = anchored_store
    with pytest.raises(ValueError, match="not an anchored key"):
        await anchored.envelope(FragmentKey("home-hero", "everyone"))


async def test_hot_anchor_cap_retires_the_coldest_partition(
    anchored_store: tuple[Store, AnchoredBundles],
) -> None:
    store, anchored = anchored_store
    order = ["SAME-ALL", "SAME-BRAND", "SAME-CAT-CLOSE"]
    for sku in order:
        assert await anchored.envelope(FragmentKey.anchored("product-cross-sell", sku))
    members: list[bytes] = await store.redis.zrange(keys.HOT_ANCHORS_KEY, 0, -1)  # type: ignore[assignment]
    hot = [as_text(m) for m in members]
    assert hot == ["product-cross-sell/@SAME-BRAND", "product-cross-sell/@SAME-CAT-CLOSE"]
    retired = FragmentKey.anchored("product-cross-sell", "SAME-ALL")
    assert await store.get_envelope(retired) is None
    leftovers = [k async for k in store.redis.scan_iter(match="*product-cross-sell/@SAME-ALL*")]
    assert leftovers == []
    assert await anchored.envelope(retired) is not None  # rebuilt when asked again


async def test_a_restock_of_a_listed_item_reaches_the_bundle_on_the_next_request(
    anchored_store: tuple[Store, AnchoredBundles],
) -> None:
    store, anchored = anchored_store
    await ListStore(store.redis).put_many(
        [ImportedList("anchor", "A", "recommended", 1, (RankedItem("SOLD-OUT", 1.0),))]
    )
    before = await anchored.envelope(KEY)
    assert before is not None
    assert "SOLD-OUT" not in decode_bundle(open_envelope(before.envelope).body).skus
    await store.load_catalog([replace(PRODUCTS["SOLD-OUT"], stock=5)], [])
    after = await anchored.envelope(KEY)
    assert after is not None
    assert after.changed
    assert decode_bundle(open_envelope(after.envelope).body).skus[0] == "SOLD-OUT"
