"""The freshness canary's reserved catalog entries: one product, one segment, no shopper.

The canary (`invalidation.canary`, ``shelfedge canary``) changes the price of `CANARY_SKU` through
the real pipeline and times how long the edge takes to serve it. Its product lives in the
reserved category `CANARY_CATEGORY`, and `origin.core.scoring.score` keeps the two apart:
the canary product scores 0 in every other segment and every other product scores 0 in
`CANARY_SEGMENT_ID`. So the canary's bundles (one per slot, variant and locale of the canary
segment) show the canary product alone, and no shopper's bundle ever shows it. Shoppers never
carry the canary segment: only the origin signs segment cookies, and its storefront leaves
reserved segments out of its personas; the canary signs its own cookie with the shared secret.

`origin.core.seed.seed_canary` installs both in a seeded store (idempotent). Pure: never performs
I/O, and imports only the catalog values (scoring reads it).
"""

from __future__ import annotations

from origin.core.catalog import Product, Segment

CANARY_SKU = "SE-CANARY"
CANARY_SEGMENT_ID = "se-canary"
CANARY_CATEGORY = "se-canary"
CANARY_SLOT = "home-hero"
"""The slot the canary reads through the edge (any slot shows the canary in its segment)."""
CANARY_CURRENCY = "USD"
CANARY_BASE_PRICE_CENTS = 100_00
RESERVED_SEGMENTS = frozenset({CANARY_SEGMENT_ID})
"""Segments no shopper is ever put in."""


def canary_product(price_cents: int = CANARY_BASE_PRICE_CENTS) -> Product:
    """The reserved canary product (always in stock; its price is what the canary moves)."""
    return Product(
        sku=CANARY_SKU,
        title="Freshness canary",
        brand="shelfedge",
        category=CANARY_CATEGORY,
        price_cents=price_cents,
        compare_at_cents=None,
        currency=CANARY_CURRENCY,
        promo=None,
        stock=1000,
        popularity=1.0,
        margin=1.0,
        locations={"canary": 1000},
    )


def canary_segment() -> Segment:
    """The reserved segment whose bundles show the canary product alone."""
    return Segment(
        CANARY_SEGMENT_ID,
        "Freshness canary (reserved)",
        {CANARY_CATEGORY: 1.0},
        (0, 10_000_000_000),
        default_affinity=0.0,
    )


def is_canary_pairing(product: Product, segment: Segment) -> bool:
    """Whether `product` may be ranked for `segment`: canary with canary, others with others."""
    return (product.category == CANARY_CATEGORY) == (segment.id == CANARY_SEGMENT_ID)
