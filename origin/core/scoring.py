"""The segment-list scoring function: which products a segment should see first in a slot.

    score = affinity^a * popularity^p * margin^m * stock_factor

- affinity   = segment's weight for the product's category (default_affinity when unlisted),
               times 1.0 inside the segment's price band and PRICE_MISS_FACTOR outside it;
- popularity = the product's normalised demand in (0, 1];
- margin     = the product's gross margin share in (0, 1];
- a, p, m    = the slot's exponents (`fragments.slots.ScoringWeights`);
- stock_factor = 0 for sold-out products (they leave the list), LOW_STOCK_FACTOR for low stock,
               1 otherwise. It depends on the stock *state*, never the count, so count-only
               noise does not reorder lists.

The freshness canary's reserved product and segment (`origin.core.canary`) only meet each
other: the canary product scores 0 outside the canary segment, every other product 0 inside it.

Ties break by SKU so the list is a pure function of its inputs. Never performs I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from fragments.cards import stock_state
from fragments.slots import ScoringWeights
from origin.core.canary import is_canary_pairing
from origin.core.catalog import Product, Segment

PRICE_MISS_FACTOR = 0.6
LOW_STOCK_FACTOR = 0.85


def score(product: Product, segment: Segment, weights: ScoringWeights) -> float:
    """The product's score for a segment in a slot; 0.0 means 'not a candidate'."""
    state = stock_state(product.stock)
    if state == "sold_out" or not is_canary_pairing(product, segment):
        return 0.0
    affinity = segment.category_affinity.get(product.category, segment.default_affinity)
    if not in_price_band(product.price_cents, segment):
        affinity *= PRICE_MISS_FACTOR
    stock_factor = LOW_STOCK_FACTOR if state == "low_stock" else 1.0
    value: float = (
        affinity**weights.affinity
        * product.popularity**weights.popularity
        * product.margin**weights.margin
        * stock_factor
    )
    return round(value, 9)


def price_change_moves_scores(before: int, after: int, segments: Iterable[Segment]) -> bool:
    """Whether a product's price moving from `before` to `after` can change any of its scores.

    A price enters `score` only through a segment's price band (in or out), so a move that keeps
    the product on the same side of every band changes no score in any list, whatever the
    weights: the product needs no rescoring (the bundles showing it still re-render its card).
    """
    return any(in_price_band(before, s) != in_price_band(after, s) for s in segments)


def in_price_band(price_cents: int, segment: Segment) -> bool:
    """Whether a price is inside the segment's preferred band (bounds included)."""
    low, high = segment.price_band
    return low <= price_cents <= high


def rank(
    products: Iterable[Product], segment: Segment, weights: ScoringWeights, limit: int
) -> list[tuple[Product, float]]:
    """The top `limit` candidates, best first, ties by SKU."""
    scored = [(p, score(p, segment, weights)) for p in products]
    scored = [item for item in scored if item[1] > 0.0]
    scored.sort(key=lambda item: (-item[1], item[0].sku))
    return scored[:limit]
