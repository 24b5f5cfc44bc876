"""Rerank a bundle's candidates for one shopper: the edge's per-request merchandising decision.

Algorithm (deterministic, O(n log n) in the number of candidates, 200 is the design load):

1. Drop sold-out candidates and those already in the cart.
2. Start from the origin's segment score. With personalization consent:
   - recency boost: a candidate whose category is the i-th most recently viewed (i = 0, 1, ...)
     is multiplied by ``1 + RECENCY_BOOST / (i + 1)``;
   - price-band affinity: with a price reference r and price p, multiply by
     ``PRICE_FLOOR + (1 - PRICE_FLOOR) * min(p, r) / max(p, r)``.
3. Business rules of the slot, always: multiply by every matching boost/bury factor.
4. Sort by adjusted score (descending), ties by the origin's order; pinned SKUs go first, in
   pin order.
5. Diversity: walk that order and keep a candidate only while its category has fewer than
   ``max_per_category`` kept items; stop at ``shown``.

Only arithmetic (+, *, /, min, max): results are bit-identical under CPython and Pyodide.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.context import ShopperContext
from fragments.bundle import Candidate, RerankSettings

RECENCY_BOOST = 0.5
PRICE_FLOOR = 0.5


@dataclass(frozen=True, slots=True)
class RerankOverrides:
    """What an experiment variant may change about the rerank (None keeps the slot's)."""

    shown: int | None = None
    recency_boost: float | None = None
    price_floor: float | None = None


def rerank(
    candidates: tuple[Candidate, ...],
    settings: RerankSettings,
    context: ShopperContext,
    overrides: RerankOverrides | None = None,
) -> list[Candidate]:
    """The candidates to show, in display order."""
    o = overrides or RerankOverrides()
    shown = settings.shown if o.shown is None else o.shown
    boost = RECENCY_BOOST if o.recency_boost is None else o.recency_boost
    floor = PRICE_FLOOR if o.price_floor is None else o.price_floor
    recency = (
        {cat: 1.0 + boost / (i + 1) for i, cat in enumerate(context.recent_categories)}
        if context.personalize
        else {}
    )
    reference = context.price_reference_cents if context.personalize else None
    pins = {sku: i for i, sku in enumerate(settings.pin)}
    scored: list[tuple[int, float, int, Candidate]] = []
    for position, c in enumerate(candidates):
        if c.stock_state == "sold_out" or c.sku in context.cart_skus:
            continue
        value = c.score * recency.get(c.category, 1.0)
        if reference and reference > 0 and c.price_cents > 0:
            ratio = min(c.price_cents, reference) / max(c.price_cents, reference)
            value *= floor + (1.0 - floor) * ratio
        for adjustment in settings.adjustments:
            if adjustment.matches(c.category, c.brand):
                value *= adjustment.factor
        pin_rank = pins.get(c.sku, len(pins))
        scored.append((pin_rank, -value, position, c))
    scored.sort(key=lambda row: (row[0], row[1], row[2]))
    cap = settings.max_per_category
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
