"""A bundle's candidates from an imported list, with the scoring filling in (pure, no I/O).

The list's order is kept. SKUs the catalog does not hold and sold-out products stay out (the
same stock rule as the scoring: `fragments.cards.stock_state`), and so do products the slot's
custom-label rule keeps out (`fragments.labels.LabelRule`; its boosts do not reorder a list:
the list's order is the recommender's). When the slot's source allows
it (``list:<name>|scoring``) and the list is missing or too short, the scoring's ranking fills
the rest, without repeats, its scores scaled below the list's last one so that the edge (which
sorts by score) still shows the list first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fragments.cards import stock_state
from fragments.labels import NO_LABEL_RULE, LabelRule
from origin.core.catalog import Product
from origin.core.lists import RankedItem

FILL_SHARE = 0.999
"""The best filled-in candidate scores this share of the list's last score."""


def candidates_from_list(
    items: Sequence[RankedItem] | None,
    products: Mapping[str, Product],
    fallback: Sequence[tuple[Product, float]] | None,
    limit: int,
    labels: LabelRule = NO_LABEL_RULE,
) -> list[tuple[Product, float]]:
    """Up to `limit` (product, score), best first: the list's, then (if any) the fallback's.

    `items` None means no list is stored; `fallback` None means the scoring may not fill in.
    """
    chosen: list[tuple[Product, float]] = []
    taken: set[str] = set()
    for item in items or ():
        if len(chosen) >= limit:
            return chosen
        product = products.get(item.sku)
        if (
            product is None
            or stock_state(product.stock) == "sold_out"
            or item.sku in taken
            or not labels.admits(product.labels)
        ):
            continue
        chosen.append((product, item.score))
        taken.add(item.sku)
    if fallback is None or len(chosen) >= limit:
        return chosen
    rest = [(p, v) for p, v in fallback if p.sku not in taken][: limit - len(chosen)]
    if not rest:
        return chosen
    if chosen:
        best = rest[0][1]
        ceiling = chosen[-1][1] * FILL_SHARE
        factor = ceiling / best if best > 0 else 0.0
        rest = [(p, round(v * factor, 12)) for p, v in rest]
    return chosen + rest
