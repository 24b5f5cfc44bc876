"""Anchors of anchored slots and the cart merge: pure, standard library and `fragments` only.

A "product" slot's bundle is keyed by the product being viewed (``?sku=`` on the slot request).
A "cart" slot has no bundle of its own: the edge reads the anchored bundles of up to
`MAX_CART_ANCHORS` cart items (each a shared cache entry, never a per-cart one) and merges them
here. The cart cookie (``se_cart``: ``SKU|SKU|...``, oldest first) is a functional cookie: it is
read for this whether or not the shopper consented to personalization, and what is in the cart
never shows.

Merge (deterministic, arithmetic only, so CPython, Pyodide and WASI agree bit for bit): each
bundle's scores are divided by its best score; anchor i (0 = the most recently added item) weighs
``1 / (i + 1)``; a candidate's merged score is the sum over the bundles that hold it, so an item
that complements several cart items rises. Ties keep the order of first appearance. Candidates
in the cart (and the anchors themselves) are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from edge.context import CART_COOKIE
from fragments.bundle import Bundle, Candidate
from fragments.ids import is_sku

MAX_CART_ANCHORS = 3
"""At most this many cart items anchor a cart slot (each one bundle read per request)."""
MAX_CART_ITEMS = 20
ANCHOR_PARAM = "sku"
"""The slot request's query parameter naming a product slot's anchor."""


def product_anchor(query: Mapping[str, str]) -> str | None:
    """The viewed product's SKU from the slot request's query, if valid."""
    sku = query.get(ANCHOR_PARAM, "")
    return sku if is_sku(sku) else None


def cart_items(cookies: Mapping[str, str]) -> tuple[str, ...]:
    """The cart's valid SKUs, most recently added first, without repeats (garbage ignored)."""
    raw = cookies.get(CART_COOKIE, "")
    items = [s for s in raw.split("|")[:MAX_CART_ITEMS] if is_sku(s)]
    return tuple(dict.fromkeys(reversed(items)))


def cart_anchors(cart: Sequence[str], limit: int = MAX_CART_ANCHORS) -> tuple[str, ...]:
    """The cart items that anchor the cart slot: the `limit` most recently added."""
    return tuple(cart[:limit])


def merge_anchored(bundles: Sequence[Bundle], exclude: frozenset[str]) -> Bundle | None:
    """One bundle of the anchors' bundles (most recent anchor first), or None if none.

    The result is the first bundle with merged candidates; `exclude` (the cart) never appears.
    """
    if not bundles:
        return None
    totals: dict[str, float] = {}
    first_seen: dict[str, Candidate] = {}
    for i, bundle in enumerate(bundles):
        best = max((c.score for c in bundle.candidates), default=0.0)
        weight = 1.0 / (i + 1)
        for c in bundle.candidates:
            if c.sku in exclude:
                continue
            share = c.score / best if best > 0 else 0.0
            totals[c.sku] = totals.get(c.sku, 0.0) + weight * share
            first_seen.setdefault(c.sku, c)
    order = {sku: position for position, sku in enumerate(first_seen)}
    ranked = sorted(first_seen, key=lambda sku: (-totals[sku], order[sku]))
    merged = tuple(replace(first_seen[sku], score=totals[sku]) for sku in ranked)
    return replace(bundles[0], candidates=merged)
