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
from operator import itemgetter

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
    o = overrides or _NO_OVERRIDES
    shown = settings.shown if o.shown is None else o.shown
    if shown <= 0:
        return []
    boost = RECENCY_BOOST if o.recency_boost is None else o.recency_boost
    floor = PRICE_FLOOR if o.price_floor is None else o.price_floor
    personal = context.personalize
    recency = (
        {cat: 1.0 + boost / (i + 1) for i, cat in enumerate(context.recent_categories)}
        if personal
        else {}
    )
    reference = context.price_reference_cents if personal else None
    by_price = bool(reference and reference > 0)
    ref = reference or 0
    keep = 1.0 - floor
    rules = [(a.factor, a.category, a.brand) for a in settings.adjustments]
    pins = {sku: i for i, sku in enumerate(settings.pin)}
    cart = context.cart_skus
    order = None
    if not rules and not pins:
        order = _plain_order(candidates, cart, recency, ref if by_price else 0, floor, keep)
    if order is None:
        order = _order(candidates, cart, recency, ref if by_price else 0, floor, keep, rules, pins)
    cap = settings.max_per_category
    if not cap:
        return order[:shown]
    per_category: dict[str, int] = {}
    chosen: list[Candidate] = []
    for c in order:
        category = c.category
        count = per_category[category] if category in per_category else 0  # noqa: SIM401
        if count >= cap:
            continue
        per_category[category] = count + 1
        chosen.append(c)
        if len(chosen) >= shown:
            break
    return chosen


def _plain_order(
    candidates: tuple[Candidate, ...],
    cart: frozenset[str],
    recency: dict[str, float],
    ref: int,
    floor: float,
    keep: float,
) -> list[Candidate] | None:
    """`_order` without pins or business rules, in comprehensions (no method call per
    candidate: ``in`` and ``[]`` instead of ``dict.get``, which ruff's SIM401 would have);
    None when a score is NaN (then only `_order`'s full comparison is right).

    The same products in the same order: ``x * 1.0`` is ``x`` for every float, so multiplying
    by 1.0 where `_order` skips a factor changes no value.
    """
    kept = [c for c in candidates if c.stock_state != "sold_out" and c.sku not in cart]
    if ref > 0:
        negs = [
            -(
                c.score
                * (recency[c.category] if c.category in recency else 1.0)  # noqa: SIM401
                * (
                    floor + keep * (p / ref if p < ref else ref / p)
                    if (p := c.price_cents) > 0
                    else 1.0
                )
            )
            for c in kept
        ]
    else:
        negs = [
            -(c.score * (recency[c.category] if c.category in recency else 1.0))  # noqa: SIM401
            for c in kept
        ]
    total = sum(negs)
    if total != total:  # noqa: PLR0124 - a NaN among them (or inf - inf: _order is right too)
        return None
    return [kept[i] for i in sorted(range(len(kept)), key=negs.__getitem__)]  # stable


def _order(
    candidates: tuple[Candidate, ...],
    cart: frozenset[str],
    recency: dict[str, float],
    ref: int,
    floor: float,
    keep: float,
    rules: list[tuple[float, str | None, str | None]],
    pins: dict[str, int],
) -> list[Candidate]:
    """The candidates still in play, by (pin rank, -adjusted score, position): the
    docstring's order, with its arithmetic in the same order."""
    unpinned = len(pins)
    # Rows in position order; sorted stably by (pin rank, -score), that is the docstring's
    # order with ties by position. The arithmetic is the docstring's, in the same order.
    pinned: list[tuple[int, float, int, Candidate]] = []
    rows: list[tuple[float, int, Candidate]] = []
    append = rows.append
    ordered = True  # no NaN score and every pin ahead of the rest: the fast sort below holds
    for position, c in enumerate(candidates):
        if c.stock_state == "sold_out" or c.sku in cart:
            continue
        value = c.score * recency.get(c.category, 1.0) if recency else c.score * 1.0
        if ref > 0:
            price = c.price_cents
            if price > 0:
                value *= floor + keep * (price / ref if price < ref else ref / price)
        for factor, category, brand in rules:
            if (category is None or category == c.category) and (brand is None or brand == c.brand):
                value *= factor
        if value != value:  # noqa: PLR0124 - NaN, without a call per candidate
            ordered = False
        if pins and c.sku in pins:
            rank = pins[c.sku]
            if rank >= unpinned:  # a SKU pinned twice ranks by its last place, maybe here
                ordered = False
            pinned.append((rank, -value, position, c))
        else:
            append((-value, position, c))
    if ordered:
        pinned.sort(key=_PIN_KEY)
        rows.sort(key=_SCORE_KEY)  # stable: equal scores keep their position order
        return [row[3] for row in pinned] + [row[2] for row in rows]
    # The full (pin rank, -score, position) comparison, over the rows as they came.
    full = pinned + [(unpinned, neg, position, c) for neg, position, c in rows]
    full.sort(key=_POSITION_KEY)
    full.sort(key=_FULL_KEY)
    return [row[3] for row in full]


_NO_OVERRIDES = RerankOverrides()
_PIN_KEY = itemgetter(0, 1)
_SCORE_KEY = itemgetter(0)
_FULL_KEY = itemgetter(0, 1, 2)
_POSITION_KEY = itemgetter(2)
