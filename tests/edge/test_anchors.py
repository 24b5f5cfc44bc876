"""The anchored slots at the edge: anchors from the request, the cart merge (table-driven), and
the flow reading one shared bundle per anchor (never a per-cart entry)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from edge.anchors import (
    MAX_CART_ANCHORS,
    cart_anchors,
    cart_items,
    merge_anchored,
    product_anchor,
)
from edge.cache import CacheEntry
from edge.config import EdgeConfig, parse_config
from edge.errors import BadEdgeInput
from edge.flow import EdgeResponse, SlotRequest, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import CacheRead, FetchResult, OriginFetch
from fragments.bundle import Bundle, encode_bundle
from fragments.ids import FragmentKey
from fragments.slots import CachePolicy
from tests.edge.bundles import candidate, settings, small_bundle

NOW = 1_700_000_000.0
POLICY = CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=3600)
CONFIG = EdgeConfig(
    fallbacks={"home-hero": "", "product-cross-sell": "", "cart-complete": "<p>empty</p>"},
    locales=("en-US",),
    segment_secret="anchor-secret-0123456789",
    anchors={"product-cross-sell": "product", "cart-complete": "cart"},
)


def anchored(slot: str, anchor: str, rows: Sequence[tuple[str, float]], shown: int = 4) -> Bundle:
    return small_bundle(
        [candidate(sku, score, category=f"c{i}") for i, (sku, score) in enumerate(rows)],
        key=FragmentKey.anchored(slot, anchor),
        rerank=settings(shown=shown),
        policy=POLICY,
    )


# --- anchors from the request --------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("", ()),
        ("A", ("A",)),
        ("A|B|C", ("C", "B", "A")),
        ("A|B|A", ("A", "B")),
        ("A|<bad>|B| |C", ("C", "B", "A")),
    ],
)
def test_cart_items_most_recent_first_valid_only(cookie: str, expected: tuple[str, ...]) -> None:
    assert cart_items({"se_cart": cookie}) == expected


def test_cart_anchors_are_capped() -> None:
    cart = tuple(f"S{i}" for i in range(10))
    assert cart_anchors(cart) == cart[:MAX_CART_ANCHORS]
    assert cart_anchors(cart, 1) == ("S0",)


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, None), ({"sku": "SKU-1"}, "SKU-1"), ({"sku": "../x"}, None), ({"sku": ""}, None)],
)
def test_product_anchor(query: Mapping[str, str], expected: str | None) -> None:
    assert product_anchor(query) == expected


# --- the merge (table-driven) ----------------------------------------------------------------


@dataclass(frozen=True)
class MergeCase:
    name: str
    bundles: tuple[tuple[tuple[str, float], ...], ...]
    """Per anchor (most recent first): its candidates (sku, score)."""
    cart: frozenset[str]
    expected: tuple[tuple[str, float], ...]


MERGE_CASES = [
    MergeCase("one anchor keeps its order, scores normalised", ((("X", 2.0), ("Y", 1.0)),),
              frozenset(), (("X", 1.0), ("Y", 0.5))),
    MergeCase("the cart never shows", ((("X", 2.0), ("A", 1.8), ("Y", 1.0)),),
              frozenset({"A"}), (("X", 1.0), ("Y", 0.5))),
    MergeCase(
        "an item complementing two cart items rises",
        ((("X", 1.0), ("Y", 0.9)), (("Y", 1.0), ("Z", 0.5))),
        frozenset(),
        (("Y", 0.9 + 0.5), ("X", 1.0), ("Z", 0.25)),
    ),
    MergeCase(
        "the most recent anchor weighs most",
        ((("X", 1.0),), (("Y", 1.0),), (("Z", 1.0),)),
        frozenset(),
        (("X", 1.0), ("Y", 0.5), ("Z", 1.0 / 3)),
    ),
    MergeCase("ties keep first appearance", ((("X", 1.0), ("Y", 1.0)),), frozenset(),
              (("X", 1.0), ("Y", 1.0))),
    MergeCase("zero scores do not divide by zero", ((("X", 0.0),),), frozenset(), (("X", 0.0),)),
    MergeCase("everything in the cart", ((("A", 1.0),),), frozenset({"A"}), ()),
]  # fmt: skip


@pytest.mark.parametrize("case", MERGE_CASES, ids=lambda c: c.name)
def test_merge(case: MergeCase) -> None:
    bundles = [anchored("cart-complete", f"A{i}", rows) for i, rows in enumerate(case.bundles)]
    merged = merge_anchored(bundles, case.cart)
    assert merged is not None
    assert [(c.sku, c.score) for c in merged.candidates] == list(case.expected)
    assert merged.key == bundles[0].key
    assert merged.head_html == bundles[0].head_html


def test_merge_of_nothing_is_none() -> None:
    assert merge_anchored([], frozenset()) is None


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0)])
def test_merge_is_deterministic_for_a_given_anchor_order(order: tuple[int, ...]) -> None:
    rows = [(("X", 1.0), ("Y", 0.5)), (("Y", 1.0), ("X", 0.2)), (("Z", 1.0),)]
    bundles = [anchored("cart-complete", f"A{i}", rows[i]) for i in order]
    first = merge_anchored(bundles, frozenset())
    again = merge_anchored(list(bundles), frozenset())
    assert first == again


# --- the flow ----------------------------------------------------------------------------------


class Origin:
    """Answers a fetch with the bundle stored for its key (404 otherwise), and records fetches."""

    def __init__(self, bundles: Sequence[Bundle]) -> None:
        self.bundles = {b.key.cache_key: b for b in bundles}
        self.paths: list[str] = []

    def __call__(self, fetch: OriginFetch) -> FetchResult:
        self.paths.append(fetch.path)
        found = self.bundles.get(fetch.key.cache_key)
        return FetchResult(200, encode_bundle(found)) if found else FetchResult(404, b"")


def run(
    slot: str, transport: MemoryTransport, cookie: str = "", query: Mapping[str, str] | None = None
) -> EdgeResponse:
    request = SlotRequest(slot, {"cookie": cookie}, query or {}, NOW, "f" * 32)
    response, _ = drive_sync(handle_slot(request, CONFIG), transport)
    return response


def shown(response: EdgeResponse) -> list[str]:
    return re.findall(r'data-se-sku="([^"]+)"', response.body)


def test_product_slot_is_keyed_by_the_viewed_product() -> None:
    p1 = anchored("product-cross-sell", "P1", [("X", 1.0), ("Y", 0.5)])
    p2 = anchored("product-cross-sell", "P2", [("Z", 1.0)])
    origin = Origin([p1, p2])
    transport = MemoryTransport(origin)
    assert shown(run("product-cross-sell", transport, query={"sku": "P1"})) == ["X", "Y"]
    assert shown(run("product-cross-sell", transport, query={"sku": "P2"})) == ["Z"]
    assert origin.paths == [p1.key.bundle_path(), p2.key.bundle_path()]
    assert "anchor=P1" in origin.paths[0]
    assert set(transport.store.snapshot()) == {p1.key.cache_key, p2.key.cache_key}
    again = run("product-cross-sell", transport, query={"sku": "P1"})
    assert again.cache_status == "HIT"


def test_product_slot_without_anchor_serves_the_safe_default_without_effects() -> None:
    transport = MemoryTransport(Origin([]))
    response = run("product-cross-sell", transport, query={"sku": "not a sku"})
    assert (response.status, response.cache_status, response.body) == (200, "FALLBACK", "")
    assert transport.effects() == []


def test_product_slot_hides_cart_items_even_without_consent() -> None:
    p1 = anchored("product-cross-sell", "P1", [("X", 1.0), ("Y", 0.5)])
    transport = MemoryTransport(Origin([p1]))
    response = run("product-cross-sell", transport, "se_cart=X", {"sku": "P1"})
    assert shown(response) == ["Y"]


def test_cart_slot_merges_shared_anchor_entries_and_never_shows_the_cart() -> None:
    bundles = [
        anchored("cart-complete", "A", [("B", 1.0), ("X", 0.9), ("Y", 0.1)]),
        anchored("cart-complete", "B", [("A", 1.0), ("Y", 0.8), ("Z", 0.4)]),
        anchored("cart-complete", "C", [("Q", 1.0)]),
        anchored("cart-complete", "D", [("R", 1.0)]),
    ]
    origin = Origin(bundles)
    transport = MemoryTransport(origin)
    response = run("cart-complete", transport, "se_cart=D|C|A|B")
    # Anchors: the three most recently added (B, A, C); D is beyond the cap.
    assert len(origin.paths) == MAX_CART_ANCHORS
    assert set(transport.store.snapshot()) == {b.key.cache_key for b in bundles[:3]}
    chosen = shown(response)
    assert not {"A", "B", "C", "D"} & set(chosen)
    assert chosen[0] == "Y"  # complements both B and A
    assert "R" not in chosen
    assert response.cache_status == "MISS"
    # The cart changes: the slot follows it, reading the shared entries already cached.
    fewer = run("cart-complete", transport, "se_cart=C")
    assert shown(fewer) == ["Q"]
    assert fewer.cache_status == "HIT"
    assert all(not key.startswith("cart") for key in transport.store.snapshot())


def test_cart_slot_with_an_empty_cart_serves_the_safe_default() -> None:
    transport = MemoryTransport(Origin([]))
    response = run("cart-complete", transport, "")
    assert (response.body, response.cache_status) == ("<p>empty</p>", "FALLBACK")
    assert transport.effects() == []


def test_cart_slot_reports_the_least_fresh_anchor_and_revalidates_a_stale_one() -> None:
    a = anchored("cart-complete", "A", [("X", 1.0)])
    b = anchored("cart-complete", "B", [("Y", 1.0)])
    transport = MemoryTransport(Origin([]))
    transport.store.put(CacheEntry(a, NOW - 5))
    transport.store.put(CacheEntry(b, NOW - 100))
    response = run("cart-complete", transport, "se_cart=A|B")
    assert response.cache_status == "STALE"
    assert response.revalidate == b.key
    assert [type(e) for e in transport.effects()] == [CacheRead, CacheRead]


def test_cart_slot_skips_an_anchor_the_origin_cannot_give() -> None:
    a = anchored("cart-complete", "A", [("X", 1.0)])
    transport = MemoryTransport(Origin([a]))
    response = run("cart-complete", transport, "se_cart=A|GONE")
    assert shown(response) == ["X"]


def test_config_json_names_anchored_slots() -> None:
    raw = {
        "fallbacks": {"s": ""},
        "locales": ["en-US"],
        "segment_secret": "x" * 20,
        "default_segment": "everyone",
        "anchors": {"s": "product"},
    }
    assert parse_config(raw).anchors == {"s": "product"}
    with pytest.raises(BadEdgeInput, match=r"config\.anchors"):
        parse_config({**raw, "anchors": {"s": "wishlist"}})
