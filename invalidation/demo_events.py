"""A realistic, deterministic stream of inventory and price changes for demos, tests, benchmarks.

Mix per change: mostly stock-count noise (a few units up or down at one location), some price
moves and promotions, a few sell-outs (every location to zero) and restocks. Half of the changes
hit a small set of hot SKUs. Versions increase per SKU from `version_base` so a new stream never
looks stale against an earlier one (pass a time-based base). Pure: never performs I/O.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from invalidation.events import Event, InventoryEvent, PriceEvent
from origin.core.catalog import Product
from origin.core.demo_catalog import PROMOS


@dataclass(frozen=True, slots=True)
class EventMix:
    """Probabilities of each kind of change (the rest is stock noise)."""

    price: float = 0.06
    promo: float = 0.02
    sell_out: float = 0.015
    restock: float = 0.015
    hot_share: float = 0.5
    """Share of changes that hit the hot SKUs."""


STOCK_NOISE_ONLY = EventMix(price=0.0, promo=0.0, sell_out=0.0, restock=0.0)


class DemoEventStream:
    """Generates events against its own running view of the catalog."""

    def __init__(
        self,
        products: Sequence[Product],
        *,
        seed: int = 7,
        version_base: int = 1,
        hot_skus: int = 200,
        mix: EventMix | None = None,
        id_prefix: str = "demo",
    ) -> None:
        self._rng = random.Random(seed)
        self._state = {p.sku: dict(p.locations) for p in products}
        self._prices = {p.sku: p.price_cents for p in products}
        self._skus = [p.sku for p in products]
        self._hot = self._skus[:hot_skus]
        self._version = dict.fromkeys(self._skus, version_base)
        self._price_version = dict.fromkeys(self._skus, version_base)
        self._mix = mix or EventMix()
        self._prefix = id_prefix
        self._counter = 0

    def __iter__(self) -> Iterator[Event]:
        while True:
            yield from self.next_change()

    def next_change(self, now: datetime | None = None) -> list[Event]:
        """The events of one change (a sell-out or restock spans locations)."""
        r = self._rng
        sku = r.choice(self._hot) if r.random() < self._mix.hot_share else r.choice(self._skus)
        roll = r.random()
        m = self._mix
        if roll < m.price:
            price = max(99, int(self._prices[sku] * r.uniform(0.9, 1.1)))
            return [self._price(sku, price, None, None, now)]
        roll -= m.price
        if roll < m.promo:
            price = self._prices[sku]
            return [self._price(sku, int(price * 0.8), price, r.choice(PROMOS), now)]
        roll -= m.promo
        if roll < m.sell_out:
            return self.sell_out(sku, now)
        roll -= m.sell_out
        if roll < m.restock:
            location = r.choice(sorted(self._state[sku]))
            return [self._stock(sku, location, r.randint(20, 60), now)]
        location = r.choice(sorted(self._state[sku]))
        current = self._state[sku][location]
        delta = r.choice((-3, -2, -1, -1, 1, 2))
        return [self._stock(sku, location, max(0, current + delta), now)]

    def sell_out(self, sku: str, now: datetime | None = None) -> list[Event]:
        """Every location of `sku` to zero."""
        return [self._stock(sku, loc, 0, now) for loc in sorted(self._state[sku])]

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._prefix}-{self._counter}"

    def _stock(self, sku: str, location: str, available: int, now: datetime | None) -> Event:
        self._state[sku][location] = available
        self._version[sku] += 1
        return InventoryEvent(
            event_id=self._next_id(),
            sku=sku,
            location=location,
            available=available,
            version=self._version[sku],
            occurred_at=_stamp(now),
        )

    def _price(
        self, sku: str, price: int, compare_at: int | None, promo: str | None, now: datetime | None
    ) -> Event:
        self._prices[sku] = price
        self._price_version[sku] += 1
        return PriceEvent(
            event_id=self._next_id(),
            sku=sku,
            price_cents=price,
            currency="USD",
            compare_at_cents=compare_at,
            promo=promo,
            version=self._price_version[sku],
            occurred_at=_stamp(now),
        )


def _stamp(now: datetime | None) -> datetime:
    return now or datetime(2026, 1, 1, tzinfo=UTC)
