"""The edge rerank: drops, personal signals, business rules, pins, diversity, shown, speed."""

from __future__ import annotations

import random
import time
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st

from edge.context import ShopperContext
from edge.rerank import PRICE_FLOOR, RECENCY_BOOST, RerankOverrides, rerank
from fragments.bundle import Candidate, RerankSettings
from fragments.slots import RankAdjustment
from tests.edge.bundles import candidate, settings

ANON = ShopperContext.anonymous("everyone")


def personal(
    cart: tuple[str, ...] = (), recent: tuple[str, ...] = (), price: int | None = None
) -> ShopperContext:
    return ShopperContext(
        visitor_id="v",
        new_visitor=False,
        segment="everyone",
        personalize=True,
        cart_skus=frozenset(cart),
        recent_categories=recent,
        price_reference_cents=price,
    )


def skus(chosen: list[Candidate]) -> list[str]:
    return [c.sku for c in chosen]


BASE = (
    candidate("A", 0.9, "audio"),
    candidate("B", 0.8, "books"),
    candidate("C", 0.7, "audio"),
    candidate("D", 0.6, "toys"),
    candidate("E", 0.5, "books"),
)

CASES = [
    pytest.param(BASE, settings(3), ANON, ["A", "B", "C"], id="score-order"),
    pytest.param(BASE, settings(10), ANON, ["A", "B", "C", "D", "E"], id="fewer-than-shown"),
    pytest.param(
        (replace(BASE[0], stock_state="sold_out"), *BASE[1:]),
        settings(3),
        ANON,
        ["B", "C", "D"],
        id="drops-sold-out",
    ),
    pytest.param(
        (replace(BASE[0], stock_state="low_stock"), *BASE[1:]),
        settings(1),
        ANON,
        ["A"],
        id="keeps-low-stock",
    ),
    pytest.param(BASE, settings(3), personal(cart=("A", "C")), ["B", "D", "E"], id="drops-cart"),
    pytest.param(
        BASE, settings(3), ShopperContext("v", False, "everyone", False, frozenset({"A"})),
        ["B", "C", "D"], id="cart-without-consent-still-dropped",
    ),
    pytest.param(
        (candidate("X", 0.5), candidate("Y", 0.5), candidate("Z", 0.5)),
        settings(3),
        ANON,
        ["X", "Y", "Z"],
        id="ties-keep-origin-order",
    ),
    # books (0.8, 0.5) * 1.5 -> 1.2, 0.75 beat audio 0.9 * 1.25 = 1.125 and 0.7 * 1.25 = 0.875.
    pytest.param(
        BASE, settings(5), personal(recent=("books", "audio")), ["B", "A", "C", "E", "D"],
        id="recency-boost",
    ),
    pytest.param(
        BASE, settings(5), ShopperContext("v", False, "everyone", False,
                                          recent_categories=("books",)),
        ["A", "B", "C", "D", "E"], id="recency-needs-consent",
    ),
    # Reference 1000: A (4000) * (0.5 + 0.5 * 0.25) = 0.5625 falls behind B, C and D.
    pytest.param(
        (replace(BASE[0], price_cents=4000), *BASE[1:]),
        settings(5),
        personal(price=1000),
        ["B", "C", "D", "A", "E"],
        id="price-affinity",
    ),
    pytest.param(
        (replace(BASE[0], price_cents=4000), *BASE[1:]),
        settings(5),
        ANON,
        ["A", "B", "C", "D", "E"],
        id="price-affinity-needs-consent",
    ),
    pytest.param(
        (replace(BASE[0], price_cents=0), *BASE[1:]),
        settings(1),
        personal(price=1000),
        ["A"],
        id="free-item-not-penalised",
    ),
    pytest.param(
        BASE, settings(5, pin=("E", "D", "missing")), ANON, ["E", "D", "A", "B", "C"], id="pins"
    ),
    pytest.param(
        (replace(BASE[4], stock_state="sold_out"), *BASE[:4]),
        settings(5, pin=("E", "D")),
        personal(cart=("D",)),
        ["A", "B", "C"],
        id="pins-sold-out-or-in-cart-dropped",
    ),
    pytest.param(
        BASE,
        settings(5, adjustments=(RankAdjustment(2.0, category="toys"),)),
        ANON,
        ["D", "A", "B", "C", "E"],
        id="boost-category",
    ),
    pytest.param(
        BASE,
        settings(5, adjustments=(RankAdjustment(0.1, category="audio"),)),
        ANON,
        ["B", "D", "E", "A", "C"],
        id="bury-category",
    ),
    pytest.param(
        (replace(BASE[1], brand="Oak"), *BASE[:1], *BASE[2:]),
        settings(2, adjustments=(RankAdjustment(0.5, brand="Oak"),
                                 RankAdjustment(0.5, category="books", brand="Oak"))),
        ANON,
        ["A", "C"],
        id="adjustments-multiply",
    ),
    pytest.param(
        BASE,
        settings(5, adjustments=(RankAdjustment(0.1, category="audio", brand="Other"),)),
        ANON,
        ["A", "B", "C", "D", "E"],
        id="adjustment-needs-both-to-match",
    ),
    pytest.param(BASE, settings(5, max_per_category=1), ANON, ["A", "B", "D"], id="diversity-1"),
    pytest.param(
        BASE, settings(4, max_per_category=2), ANON, ["A", "B", "C", "D"], id="diversity-2"
    ),
    pytest.param(
        BASE,
        settings(5, max_per_category=1, pin=("C",)),
        ANON,
        ["C", "B", "D"],
        id="diversity-counts-pins",
    ),
    pytest.param((), settings(3), ANON, [], id="empty"),
]  # fmt: skip


@pytest.mark.parametrize(("candidates", "rerank_settings", "context", "expected"), CASES)
def test_rerank(
    candidates: tuple[Candidate, ...],
    rerank_settings: RerankSettings,
    context: ShopperContext,
    expected: list[str],
) -> None:
    assert skus(rerank(candidates, rerank_settings, context)) == expected


def test_documented_constants() -> None:
    assert (RECENCY_BOOST, PRICE_FLOOR) == (0.5, 0.5)


def test_overrides_change_shown_boost_and_floor() -> None:
    assert skus(rerank(BASE, settings(3), ANON, RerankOverrides(shown=1))) == ["A"]
    # Without a recency boost the shopper's history changes nothing.
    no_boost = RerankOverrides(recency_boost=0.0)
    assert skus(rerank(BASE, settings(5), personal(recent=("books",)), no_boost)) == list("ABCDE")
    # A price floor of 1 switches price affinity off.
    cheap = (replace(BASE[0], price_cents=4000), *BASE[1:])
    no_floor = RerankOverrides(price_floor=1.0)
    assert skus(rerank(cheap, settings(5), personal(price=1000), no_floor)) == list("ABCDE")


def _many(n: int, seed: int) -> tuple[Candidate, ...]:
    rng = random.Random(seed)
    return tuple(
        candidate(
            f"SKU-{i:05d}",
            round(rng.random(), 6),
            f"cat{rng.randrange(20)}",
            brand=f"b{rng.randrange(40)}",
            price=rng.randrange(500, 50_000),
            stock="sold_out" if rng.random() < 0.05 else "in_stock",
        )
        for i in range(n)
    )


MANY_SETTINGS = settings(
    24,
    max_per_category=3,
    pin=("SKU-00150", "SKU-00007"),
    adjustments=(RankAdjustment(1.5, category="cat3"), RankAdjustment(0.5, brand="b1")),
)
MANY_CONTEXT = personal(cart=("SKU-00001", "SKU-00002"), recent=("cat4", "cat9"), price=9000)


def test_deterministic_for_the_same_input() -> None:
    candidates = _many(200, seed=1)
    first = rerank(candidates, MANY_SETTINGS, MANY_CONTEXT)
    for _ in range(3):
        assert rerank(candidates, MANY_SETTINGS, MANY_CONTEXT) == first
    assert len(first) == 24
    assert skus(first)[:2] == ["SKU-00150", "SKU-00007"]
    assert len({c.sku for c in first}) == 24
    assert all(c.stock_state != "sold_out" for c in first)
    assert not {"SKU-00001", "SKU-00002"} & set(skus(first))
    per_category: dict[str, int] = {}
    for c in first:
        per_category[c.category] = per_category.get(c.category, 0) + 1
    assert max(per_category.values()) <= 3


def _best_seconds(candidates: tuple[Candidate, ...], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        rerank(candidates, MANY_SETTINGS, MANY_CONTEXT)
        best = min(best, time.perf_counter() - started)
    return best


def test_200_candidates_are_fast_and_growth_is_not_quadratic() -> None:
    small = _best_seconds(_many(200, seed=2), rounds=30)
    large = _best_seconds(_many(200 * 32, seed=3), rounds=5)

    assert small < 0.002, f"rerank of 200 candidates took {small * 1000:.2f} ms"
    # n log n predicts about 32 * 1.6 = 52x; quadratic would be about 1000x.
    assert large / small < 200, f"200 -> 6400 candidates: {large / small:.0f}x slower"


def _reference(
    candidates: tuple[Candidate, ...],
    rerank_settings: RerankSettings,
    context: ShopperContext,
    overrides: RerankOverrides | None,
) -> list[Candidate]:
    """The module docstring's algorithm written plainly (the first implementation): one
    (pin rank, -score, position) sort key per candidate."""
    o = overrides or RerankOverrides()
    shown = rerank_settings.shown if o.shown is None else o.shown
    boost = RECENCY_BOOST if o.recency_boost is None else o.recency_boost
    floor = PRICE_FLOOR if o.price_floor is None else o.price_floor
    recency = (
        {cat: 1.0 + boost / (i + 1) for i, cat in enumerate(context.recent_categories)}
        if context.personalize
        else {}
    )
    reference = context.price_reference_cents if context.personalize else None
    pins = {sku: i for i, sku in enumerate(rerank_settings.pin)}
    scored: list[tuple[int, float, int, Candidate]] = []
    for position, c in enumerate(candidates):
        if c.stock_state == "sold_out" or c.sku in context.cart_skus:
            continue
        value = c.score * recency.get(c.category, 1.0)
        if reference and reference > 0 and c.price_cents > 0:
            ratio = min(c.price_cents, reference) / max(c.price_cents, reference)
            value *= floor + (1.0 - floor) * ratio
        for adjustment in rerank_settings.adjustments:
            if adjustment.matches(c.category, c.brand):
                value *= adjustment.factor
        scored.append((pins.get(c.sku, len(pins)), -value, position, c))
    scored.sort(key=lambda row: (row[0], row[1], row[2]))
    cap = rerank_settings.max_per_category
    per_category: dict[str, int] = {}
    chosen: list[Candidate] = []
    for _pin, _neg, _pos, c in scored:
        if len(chosen) >= shown:
            break
        count = per_category.get(c.category, 0)
        if cap and count >= cap:
            continue
        per_category[c.category] = count + 1
        chosen.append(c)
    return chosen


_SCORES = st.one_of(
    st.sampled_from([0.0, -0.0, 0.25, 0.5, 1.0, float("inf"), float("nan")]),
    st.floats(min_value=-2.0, max_value=2.0),
)
_CANDIDATE = st.builds(
    candidate,
    st.sampled_from([f"S{i}" for i in range(12)]),  # repeats: a SKU may appear twice
    _SCORES,
    st.sampled_from(["c0", "c1", "c2", "c3"]),
    brand=st.sampled_from(["x", "y"]),
    price=st.sampled_from([-5, 0, 100, 999, 1000, 1001, 5000]),
    stock=st.sampled_from(["in_stock", "low_stock", "sold_out"]),
)
_SKUS = st.lists(st.sampled_from([f"S{i}" for i in range(12)]), max_size=3)
_SETTINGS = st.builds(
    settings,
    st.integers(-1, 8),
    st.integers(-1, 3),
    _SKUS,
    st.lists(
        st.builds(
            RankAdjustment,
            st.sampled_from([0.0, 0.5, 1.5, 2.0]),
            st.sampled_from([None, "c0", "c1"]),
            st.sampled_from([None, "x"]),
        ),
        max_size=3,
    ),
)
_CONTEXT = st.builds(
    ShopperContext,
    st.just("v"),
    st.just(False),
    st.just("everyone"),
    st.booleans(),
    _SKUS.map(frozenset),
    st.lists(st.sampled_from(["c0", "c1", "c2", "c3"]), max_size=4, unique=True).map(tuple),
    st.sampled_from([None, 0, -3, 1000, 5000]),
)
_OVERRIDES = st.one_of(
    st.none(),
    st.builds(
        RerankOverrides,
        st.one_of(st.none(), st.integers(-1, 6)),
        st.one_of(st.none(), st.floats(0.0, 2.0)),
        st.one_of(st.none(), st.floats(0.0, 1.0)),
    ),
)


@settings_(max_examples=600, deadline=None)
@given(st.lists(_CANDIDATE, max_size=30).map(tuple), _SETTINGS, _CONTEXT, _OVERRIDES)
def test_the_fast_rerank_chooses_what_the_plain_algorithm_chooses(
    candidates: tuple[Candidate, ...],
    rerank_settings: RerankSettings,
    context: ShopperContext,
    overrides: RerankOverrides | None,
) -> None:
    """The same candidate objects in the same order, for any input: ties, repeated SKUs, NaN
    and infinite scores, zero and negative prices, caps and shown counts of 0 or below."""
    expected = _reference(candidates, rerank_settings, context, overrides)
    got = rerank(candidates, rerank_settings, context, overrides)
    assert [id(c) for c in got] == [id(c) for c in expected]
