"""The candidates of an anchored bundle (a product page's cross-sell): pure, no I/O.

An anchored bundle relates to one product, the anchor. Its candidates come, in this order of
preference, from the anchor's imported item-to-item list, else from the list learned from
shoppers' behaviour (co-views and co-purchases), else from products similar to the anchor. A
list shorter than the slot's candidates is completed by the similar products, scored below the
list (`origin.core.list_candidates`). The anchor itself and sold-out products never appear.

Similarity (no list at all): a product shares the anchor's category and/or brand, and the closer
its price, the better: ``score = (CATEGORY_WEIGHT * same category + BRAND_WEIGHT * same brand +
PRICE_WEIGHT * min(p, a) / max(p, a)) * (0.5 + 0.5 * popularity)``; products sharing neither
category nor brand are not similar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from fragments.cards import stock_state
from origin.core.catalog import Product
from origin.core.list_candidates import candidates_from_list
from origin.core.lists import RankedItem

CATEGORY_WEIGHT = 0.6
BRAND_WEIGHT = 0.25
PRICE_WEIGHT = 0.15

CandidateOrigin = Literal["imported", "learned", "similar"]


@dataclass(frozen=True, slots=True)
class AnchoredCandidates:
    """The ranked candidates of one anchored bundle and which source led them."""

    ranked: list[tuple[Product, float]]
    source: CandidateOrigin


def similarity(anchor: Product, other: Product) -> float:
    """How similar `other` is to `anchor` (0 when it shares neither category nor brand)."""
    same_category = anchor.category == other.category
    same_brand = anchor.brand == other.brand
    if not (same_category or same_brand):
        return 0.0
    low = min(anchor.price_cents, other.price_cents)
    high = max(anchor.price_cents, other.price_cents)
    closeness = low / high if high > 0 else 1.0
    base = CATEGORY_WEIGHT * same_category + BRAND_WEIGHT * same_brand + PRICE_WEIGHT * closeness
    return round(base * (0.5 + 0.5 * other.popularity), 12)


def similar_products(
    anchor: Product, catalog: Iterable[Product], limit: int
) -> list[tuple[Product, float]]:
    """Up to `limit` in-stock products most similar to `anchor`, best first (ties by SKU)."""
    scored = [
        (product, value)
        for product in catalog
        if product.sku != anchor.sku
        and stock_state(product.stock) != "sold_out"
        and (value := similarity(anchor, product)) > 0
    ]
    scored.sort(key=lambda row: (-row[1], row[0].sku))
    return scored[:limit]


def anchored_candidates(
    anchor: Product,
    imported: Sequence[RankedItem] | None,
    learned: Sequence[RankedItem] | None,
    products: Mapping[str, Product],
    catalog: Iterable[Product],
    limit: int,
) -> AnchoredCandidates:
    """The anchor's candidates: imported list, else learned list, else similar products.

    `products` holds (at least) the listed SKUs; `catalog` is what similarity draws from.
    """
    similar = similar_products(anchor, catalog, limit + 1)
    for items, source in ((imported, "imported"), (learned, "learned")):
        if items:
            listed = [item for item in items if item.sku != anchor.sku]
            ranked = candidates_from_list(listed, products, similar, limit)
            origin: CandidateOrigin = "imported" if source == "imported" else "learned"
            return AnchoredCandidates(ranked, origin)
    return AnchoredCandidates(similar[:limit], "similar")
