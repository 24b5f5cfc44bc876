"""The canary's reserved product and segment only ever meet each other (`origin.core.canary`)."""

from __future__ import annotations

from fragments.slots import load_slots
from origin.core.canary import CANARY_SEGMENT_ID, CANARY_SKU, canary_product, canary_segment
from origin.core.demo_catalog import generate_catalog
from origin.core.scoring import rank, score


def test_the_canary_ranks_alone_in_its_segment_and_nowhere_else() -> None:
    catalog = generate_catalog(42, 50)
    products = [*catalog.products, canary_product()]
    weights = load_slots().slots["home-hero"].scoring
    in_canary = rank(products, canary_segment(), weights, 100)
    assert [p.sku for p, _ in in_canary] == [CANARY_SKU]
    for segment in catalog.segments:
        assert score(canary_product(), segment, weights) == 0.0
        assert CANARY_SKU not in [p.sku for p, _ in rank(products, segment, weights, 100)]
    assert canary_segment().id == CANARY_SEGMENT_ID
