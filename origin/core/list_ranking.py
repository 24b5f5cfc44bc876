"""Bulk ranking: the best products of many ranked lists in one pass over the products.

A ranked list keeps its best `origin.core.store.list_depth` products above a floor
(`origin.core.store.ListChange`), in the list's order: by score, then by SKU (Redis's sorted-set
order; SKUs are ASCII, so Python's string order is the same). `TopScores` collects, for every
list at once, the best (score, SKU) pairs among products scored with
`origin.core.scoring.ListScorer` (each product scored once for all lists), in memory bounded by
the lists' depths and `FLUSH_EVERY` whatever the number of products, and remembers the best
(score, SKU) it left out: the floor its lists may take. Products with the same scores (a feed's
new products share popularity and margin, so most do) are offered to each list as one group:
a group below a full list's worst member costs one comparison, not one per product. An import
feeds it every new product and merges it into Redis once; a full rebuild replaces each list
from it. Pure: never performs I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from origin.core.store import ListChange

FLUSH_EVERY = 10_000
"""Products buffered (grouped by their scores) before they are offered to the lists."""


class TopScores:
    """Per list (in a fixed order), the best `depth` scored SKUs seen so far."""

    def __init__(self, list_ids: Sequence[str], depths: Mapping[str, int]) -> None:
        self.list_ids = tuple(list_ids)
        self._depths = [depths[lid] for lid in self.list_ids]
        self._heaps: list[list[tuple[float, str]]] = [[] for _ in self.list_ids]
        self._left_out: list[tuple[float, str] | None] = [None] * len(self.list_ids)
        self._pending: dict[tuple[float, ...], list[str]] = {}
        self._buffered = 0

    def add(self, sku: str, scores: tuple[float, ...]) -> None:
        """Offer one product's scores (aligned with `list_ids`; 0 is not a candidate)."""
        self._pending.setdefault(scores, []).append(sku)
        self._buffered += 1
        if self._buffered >= FLUSH_EVERY:
            self._flush()

    def _flush(self) -> None:
        heaps, depths, left_out = self._heaps, self._depths, self._left_out
        groups = [(scores, skus, max(skus)) for scores, skus in self._pending.items()]
        self._pending.clear()
        self._buffered = 0
        for i, heap in enumerate(heaps):
            depth = depths[i]
            for scores, skus, last in groups:
                value = scores[i]
                if value <= 0.0:
                    continue
                if len(heap) >= depth and value < heap[0][0]:
                    best = left_out[i]
                    if best is None or (value, last) > best:
                        left_out[i] = (value, last)
                    continue
                for sku in skus:
                    pair = (value, sku)
                    if len(heap) < depth:
                        heapq.heappush(heap, pair)
                        continue
                    if pair > heap[0]:
                        pair = heapq.heapreplace(heap, pair)
                    best = left_out[i]
                    if best is None or pair > best:
                        left_out[i] = pair

    def changes(self) -> dict[str, ListChange]:
        """What to merge into each list: its kept scores, and the floor of what was left out."""
        self._flush()
        return {
            lid: ListChange({sku: value for value, sku in self._heaps[i]}, (), self._left_out[i])
            for i, lid in enumerate(self.list_ids)
        }

    def __bool__(self) -> bool:
        return self._buffered > 0 or any(self._heaps)
