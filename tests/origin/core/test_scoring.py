"""The segment-list score: its documented properties, and deterministic ranking."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fragments.labels import LabelRule, parse_label_rule
from fragments.slots import ScoringWeights
from origin.core.canary import CANARY_CATEGORY, canary_segment
from origin.core.catalog import Product, Segment
from origin.core.demo_catalog import demo_segments
from origin.core.scoring import (
    LOW_STOCK_FACTOR,
    PRICE_MISS_FACTOR,
    ListScorer,
    price_change_moves_scores,
    rank,
    score,
)

SEGMENT = Segment("tech", "Tech", {"audio": 2.0, "books": 0.5}, (1_000, 10_000), 0.8)
WEIGHTS = ScoringWeights(affinity=1.5, popularity=1.0, margin=0.5)


def product(sku: str = "SKU-1", **changes: object) -> Product:
    base = Product(
        sku=sku,
        title="Speaker",
        brand="Acme",
        category="audio",
        price_cents=5_000,
        compare_at_cents=None,
        currency="USD",
        promo=None,
        stock=48,
        popularity=0.5,
        margin=0.4,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_score_follows_the_documented_formula() -> None:
    expected = 2.0**1.5 * 0.5**1.0 * 0.4**0.5
    assert score(product(), SEGMENT, WEIGHTS) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("stock", [0, -1, -100])
def test_sold_out_scores_zero_and_leaves_the_list(stock: int) -> None:
    assert score(product(stock=stock), SEGMENT, WEIGHTS) == 0.0
    assert rank([product(stock=stock)], SEGMENT, WEIGHTS, 10) == []


def test_count_only_changes_do_not_change_the_score() -> None:
    scores = {score(product(stock=n), SEGMENT, WEIGHTS) for n in (6, 7, 47, 48, 10_000)}
    assert len(scores) == 1


def test_low_stock_is_a_state_with_its_own_factor() -> None:
    in_stock = score(product(stock=6), SEGMENT, WEIGHTS)
    for n in (1, 3, 5):
        low = score(product(stock=n), SEGMENT, WEIGHTS)
        assert low == pytest.approx(in_stock * LOW_STOCK_FACTOR, abs=1e-9)


@pytest.mark.parametrize(
    ("price", "in_band"),
    [(999, False), (1_000, True), (5_000, True), (10_000, True), (10_001, False)],
)
def test_price_band_miss_factor(price: int, in_band: bool) -> None:
    inside = score(product(price_cents=5_000), SEGMENT, WEIGHTS)
    factor = 1.0 if in_band else PRICE_MISS_FACTOR**WEIGHTS.affinity
    assert score(product(price_cents=price), SEGMENT, WEIGHTS) == pytest.approx(
        inside * factor, abs=1e-9
    )


@pytest.mark.parametrize(
    ("before", "after", "moves"),
    [(5_000, 9_999, False), (5_000, 10_000, False), (5_000, 10_001, True), (999, 1_000, True),
     (500, 900, False), (20_000, 11_000, False), (20_000, 5_000, True)],
)  # fmt: skip
def test_a_price_change_moves_scores_only_across_a_band_edge(
    before: int, after: int, moves: bool
) -> None:
    assert price_change_moves_scores(before, after, [SEGMENT]) is moves


@given(
    before=st.integers(0, 300_000),
    after=st.integers(0, 300_000),
    stock=st.sampled_from([0, 3, 48]),
    weights=st.builds(
        ScoringWeights,
        affinity=st.floats(0.0, 3.0),
        popularity=st.floats(0.0, 3.0),
        margin=st.floats(0.0, 3.0),
    ),
)
def test_a_price_change_that_moves_no_score_leaves_every_score_equal(
    before: int, after: int, stock: int, weights: ScoringWeights
) -> None:
    """The pipeline skips rescoring on this answer: it must never hide a score change."""
    segments = demo_segments()
    if price_change_moves_scores(before, after, segments):
        return
    for segment in segments:
        assert score(product(price_cents=before, stock=stock), segment, weights) == score(
            product(price_cents=after, stock=stock), segment, weights
        )


def test_unlisted_categories_use_the_default_affinity() -> None:
    toys = score(product(category="toys"), SEGMENT, WEIGHTS)
    audio = score(product(category="audio"), SEGMENT, WEIGHTS)
    assert toys / audio == pytest.approx((0.8 / 2.0) ** 1.5, rel=1e-6)


def test_weights_are_exponents() -> None:
    flat = ScoringWeights(affinity=0.0, popularity=0.0, margin=0.0)
    assert score(product(), SEGMENT, flat) == 1.0
    assert score(product(stock=3), SEGMENT, flat) == LOW_STOCK_FACTOR


def test_ties_break_by_sku_and_rank_is_a_pure_function_of_its_inputs() -> None:
    twins = [product(f"SKU-{c}") for c in "DBCA"]
    better = product("SKU-Z", popularity=0.9)
    worse = product("SKU-0", popularity=0.1)
    sold_out = product("SKU-X", stock=0)
    products = [*twins, better, worse, sold_out]

    ranked = rank(products, SEGMENT, WEIGHTS, 10)

    order = [p.sku for p, _ in ranked]
    assert order == ["SKU-Z", "SKU-A", "SKU-B", "SKU-C", "SKU-D", "SKU-0"]
    for seed in range(5):
        shuffled = products[:]
        random.Random(seed).shuffle(shuffled)
        assert rank(shuffled, SEGMENT, WEIGHTS, 10) == ranked
    assert [p.sku for p, _ in rank(products, SEGMENT, WEIGHTS, 3)] == order[:3]
    assert all(value > 0 for _, value in ranked)


LABEL_RULES = (
    LabelRule(),
    parse_label_rule({"custom_label_1": ["summer"]}, None, None),
    parse_label_rule(
        None, {"custom_label_0": ["clearance"]}, [{"custom_label_1": "summer", "factor": 1.7}]
    ),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["audio", "books", "games", CANARY_CATEGORY]),
            st.integers(0, 20_000),
            st.integers(-2, 60),
            st.floats(0.01, 1.0),
            st.floats(0.01, 1.0),
            st.sampled_from(["", "clearance"]),
            st.sampled_from(["", "summer", "winter"]),
        ),
        max_size=30,
    )
)
def test_the_list_scorer_equals_score_for_every_list(rows: list[tuple[Any, ...]]) -> None:
    """Bulk scoring is an optimisation of `score`, never a second definition: bit-identical."""
    segments = [*demo_segments(), canary_segment()]
    weights = [WEIGHTS, ScoringWeights(0.5, 1.0, 1.5), ScoringWeights(1.0, 0.3, 0.0)]
    lists = [(s, w, r) for s in segments for w in weights for r in LABEL_RULES]
    scorer = ListScorer(lists)
    for i, (category, price, stock, popularity, margin, label0, label1) in enumerate(rows):
        item = product(
            f"SKU-{i}", category=category, price_cents=price, stock=stock,
            popularity=popularity, margin=margin, labels=(label0, label1, "", "", ""),
        )  # fmt: skip
        for _ in range(2):  # computed, then memoised
            assert scorer.scores(item) == tuple(score(item, s, w, r) for s, w, r in lists)


def test_a_label_rule_keeps_products_out_and_lifts_others() -> None:
    summer = product("SKU-S", labels=("", "summer", "", "", ""))
    winter = product("SKU-W", labels=("", "winter", "", "", ""))
    only_summer = LABEL_RULES[1]
    assert score(winter, SEGMENT, WEIGHTS, only_summer) == 0.0
    assert score(summer, SEGMENT, WEIGHTS, only_summer) == score(summer, SEGMENT, WEIGHTS)
    lifted = score(summer, SEGMENT, WEIGHTS, LABEL_RULES[2])
    assert lifted == round(score(summer, SEGMENT, WEIGHTS) * 1.7, 9) or lifted == pytest.approx(
        score(summer, SEGMENT, WEIGHTS) * 1.7, abs=1e-9
    )
    assert [p.sku for p, _ in rank([winter, summer], SEGMENT, WEIGHTS, 5, only_summer)] == ["SKU-S"]
