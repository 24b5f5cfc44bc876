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
- label factor = the slot's (or variant's) custom-label rule (`fragments.labels.LabelRule`):
               0 for a product the rule keeps out, else the product of its matching boosts;
               a slot without a label rule skips it (1).

`ListScorer` scores many products for many lists at once (what imports and rescores use): each
product's per-slot and per-segment parts are computed once, and every value is bit-identical
to `score` (the same operations in the same order), which stays the one definition.

The freshness canary's reserved product and segment (`origin.core.canary`) only meet each
other: the canary product scores 0 outside the canary segment, every other product 0 inside it.

Ties break by SKU so the list is a pure function of its inputs. Never performs I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from fragments.cards import stock_state
from fragments.labels import NO_LABEL_RULE, LabelRule
from fragments.slots import ScoringWeights
from origin.core.canary import is_canary_pairing
from origin.core.catalog import Product, Segment

PRICE_MISS_FACTOR = 0.6
MEMO_SIZE = 50_000
"""Score vectors `ListScorer` keeps (cleared when full)."""
LOW_STOCK_FACTOR = 0.85


def score(
    product: Product,
    segment: Segment,
    weights: ScoringWeights,
    labels: LabelRule = NO_LABEL_RULE,
) -> float:
    """The product's score for a segment in a slot; 0.0 means 'not a candidate'."""
    state = stock_state(product.stock)
    if state == "sold_out" or not is_canary_pairing(product, segment):
        return 0.0
    label_factor = labels.factor(product.labels)
    if label_factor == 0.0:
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
    if label_factor != 1.0:
        value *= label_factor
    return round(value, 9)


class ListScorer:
    """Scores products for a fixed sequence of lists, each a (segment, weights, label rule).

    `scores(product)` returns one score per list, in order, equal to `score` for each. The
    scores are a function of few product fields (category, the side of each segment's price
    band, stock state, popularity, margin, labels), so they are memoised on those: a feed's
    new products, which share popularity and margin, mostly cost a lookup.
    """

    def __init__(self, lists: Sequence[tuple[Segment, ScoringWeights, LabelRule]]) -> None:
        self.lists = tuple(lists)
        self._weights = list(dict.fromkeys(w for _, w, _ in self.lists))
        self._segments = list({s.id: s for s, _, _ in self.lists}.values())
        self._rules = list(dict.fromkeys(r for _, _, r in self.lists))
        weight_at = {w: i for i, w in enumerate(self._weights)}
        segment_at = {s.id: i for i, s in enumerate(self._segments)}
        rule_at = {r: i for i, r in enumerate(self._rules)}
        self._plan = tuple(
            (segment_at[s.id], weight_at[w], rule_at[r], w.affinity) for s, w, r in self.lists
        )
        self._zeros = (0.0,) * len(self.lists)
        self._powers: dict[tuple[float, float], float] = {}
        self._bands = tuple(s.price_band for s in self._segments)
        self._memo: dict[tuple[object, ...], tuple[float, ...]] = {}
        self._band_memo: dict[int, tuple[bool, ...]] = {}
        """Price -> inside each segment's band (feeds repeat a few thousand prices)."""

    def scores(self, product: Product) -> tuple[float, ...]:
        return self.scores_of(
            product.category, product.price_cents, product.stock, product.popularity,
            product.margin, product.labels, lambda: product,
        )  # fmt: skip

    def scores_of(
        self,
        category: str,
        price_cents: int,
        stock: int,
        popularity: float,
        margin: float,
        labels: tuple[str, ...],
        product: Callable[[], Product],
    ) -> tuple[float, ...]:
        """`scores` of the product with these fields; `product()` builds it, called only when
        the scores are not memoised (an import ranks its new items without building one)."""
        state = stock_state(stock)
        if state == "sold_out":
            return self._zeros
        bands = self._band_memo.get(price_cents)
        if bands is None:
            if len(self._band_memo) >= MEMO_SIZE:
                self._band_memo.clear()
            bands = self._band_memo[price_cents] = tuple(
                low <= price_cents <= high for low, high in self._bands
            )
        key = (category, bands, state, popularity, margin, labels)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = self._compute(product(), state)
        return found

    def _compute(self, product: Product, state: str) -> tuple[float, ...]:
        stock_factor = LOW_STOCK_FACTOR if state == "low_stock" else 1.0
        popularity, margin = product.popularity, product.margin
        tails = [(popularity**w.popularity, margin**w.margin) for w in self._weights]
        affinities: list[float | None] = []
        for segment in self._segments:
            if not is_canary_pairing(product, segment):
                affinities.append(None)
                continue
            affinity = segment.category_affinity.get(product.category, segment.default_affinity)
            if not in_price_band(product.price_cents, segment):
                affinity *= PRICE_MISS_FACTOR
            affinities.append(affinity)
        factors = [rule.factor(product.labels) for rule in self._rules]
        powers = self._powers
        out: list[float] = []
        for segment_i, weight_i, rule_i, exponent in self._plan:
            base = affinities[segment_i]
            label_factor = factors[rule_i]
            if base is None or label_factor == 0.0:
                out.append(0.0)
                continue
            lifted = powers.get((base, exponent))
            if lifted is None:
                lifted = powers[(base, exponent)] = base**exponent
            popular, margined = tails[weight_i]
            value: float = lifted * popular * margined * stock_factor
            if label_factor != 1.0:
                value *= label_factor
            out.append(round(value, 9))
        return tuple(out)


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
    products: Iterable[Product],
    segment: Segment,
    weights: ScoringWeights,
    limit: int,
    labels: LabelRule = NO_LABEL_RULE,
) -> list[tuple[Product, float]]:
    """The top `limit` candidates, best first, ties by SKU."""
    scored = [(p, score(p, segment, weights, labels)) for p in products]
    scored = [item for item in scored if item[1] > 0.0]
    scored.sort(key=lambda item: (-item[1], item[0].sku))
    return scored[:limit]
