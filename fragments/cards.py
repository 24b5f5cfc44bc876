"""What a shopper sees of a product on a card: the view object, stock states and badges.

Pure functions shared by the origin (rendering bundles) and tests. A product's stock *count*
is never shown, only its stock state, so count-only noise (48 -> 47) changes nothing visible.
"""

from __future__ import annotations

from dataclasses import dataclass

from fragments.bundle import StockState

LOW_STOCK_THRESHOLD = 5
"""At or below this many units a product shows a low-stock badge."""


def stock_state(available: int) -> StockState:
    """Map a unit count to the visible stock state."""
    if available <= 0:
        return "sold_out"
    if available <= LOW_STOCK_THRESHOLD:
        return "low_stock"
    return "in_stock"


def badges(
    price_cents: int, compare_at_cents: int | None, promo: str | None, state: StockState
) -> tuple[str, ...]:
    """Visible badges in display order."""
    out: list[str] = []
    if state == "sold_out":
        out.append("sold-out")
    elif state == "low_stock":
        out.append("low-stock")
    if compare_at_cents is not None and compare_at_cents > price_cents:
        out.append("sale")
    if promo:
        out.append("promo")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CardView:
    """Everything a product card template may show."""

    sku: str
    title: str
    brand: str
    category: str
    price_cents: int
    compare_at_cents: int | None
    currency: str
    promo: str | None
    stock_state: StockState
    badges: tuple[str, ...]
    url: str
    image_url: str
