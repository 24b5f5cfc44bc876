"""The freshness canary: move the reserved canary product's price through the real pipeline and
time how long the edge takes to serve it (the end-to-end freshness indicator).

One round: choose a price different from the last one, produce a ``price.v1`` event for
`origin.core.canary.CANARY_SKU` to Kafka (a new event id, a time-based version), then poll the
edge's slot route as a shopper of the reserved canary segment (a segment cookie the canary signs
with the shared secret) until the canary card shows the new price, or a later canary's. What is
timed is produce -> first edge answer at least that fresh: broker, consumer window, apply,
recompute, purge and the edge's next fetch.

Several canaries may run at once (the deployment's, and an operator's check from a runbook):
their events for the one canary product are ordered by version, and a window that holds two
applies only the later one, so a round may never see its own price. Prices are therefore the
clock's tenth of a second (cycling once a day, `PRICE_STEPS`): a price produced after this
round's, up to its timeout, proves the edge fresher than this round's event, and counts. A
round that does not see such a price within `CanaryConfig.timeout_s` is a failure (counted,
logged; the last-success gauge stays put, so ``ShelfedgeCanaryStalled`` fires).

Metrics (its own registry, served on its own port by ``shelfedge canary``):
``shelfedge_canary_freshness_seconds`` (histogram; a bucket at 5.0, the objective's bound),
``shelfedge_canary_last_success_timestamp_seconds`` and ``shelfedge_canary_rounds_total``
by outcome (``ok``, ``timeout``, ``error``). Never touches any product but the canary's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from typing import Protocol

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fragments.render import format_money
from fragments.segment_cookie import COOKIE_NAME, VISITOR_COOKIE, sign_segment
from invalidation.events import Event, PriceEvent
from origin.core.canary import (
    CANARY_BASE_PRICE_CENTS,
    CANARY_CURRENCY,
    CANARY_SEGMENT_ID,
    CANARY_SKU,
    CANARY_SLOT,
)

log = logging.getLogger("shelfedge.canary")

FRESHNESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Bucket bounds of the freshness histogram: 5.0 is the objective's bound (deploy rules)."""
PRICE_STEPS = 864_000
"""Canary prices cycle through this many cents above the base price: one a tenth of a second of
wall-clock time, a day in all (so a price read back orders rounds that are less than a day
apart)."""
COOKIE_TTL_S = 24 * 3600
_CANARY_PRICE = re.compile(
    r'data-sku="' + re.escape(CANARY_SKU) + r'".*?<span class="se-price">([^<]*)</span>', re.S
)


class EventSink(Protocol):
    """Where the canary's events go (`invalidation.producer.EventProducer`)."""

    async def send(self, event: Event) -> None: ...

    async def flush(self) -> None: ...


CANARY_VISITOR_ID = "ca" * 16
"""The canary's own visitor id (its segment cookie is bound to it); no shopper has it."""


@dataclass(frozen=True, slots=True)
class CanaryConfig:
    edge_url: str
    """The edge the canary reads through, e.g. ``http://127.0.0.1:8700``."""
    segment_secret: str
    """The shared secret segment cookies are signed with (the canary signs its own)."""
    interval_s: float = 30.0
    """Seconds from one round's start to the next."""
    timeout_s: float = 60.0
    """A round that has not seen its price by then failed."""
    poll_s: float = 0.05
    """How often the edge is asked while waiting."""
    slot: str = CANARY_SLOT
    locale: str = "en-US"


@dataclass(frozen=True, slots=True)
class CanaryMetrics:
    registry: CollectorRegistry
    freshness: Histogram
    last_success: Gauge
    rounds: Counter

    @classmethod
    def create(cls) -> CanaryMetrics:
        r = CollectorRegistry()
        return cls(
            registry=r,
            freshness=Histogram(
                "shelfedge_canary_freshness_seconds",
                "Canary price produced to Kafka -> first edge answer showing it",
                buckets=FRESHNESS_BUCKETS,
                registry=r,
            ),
            last_success=Gauge(
                "shelfedge_canary_last_success_timestamp_seconds",
                "Unix time of the last canary round that saw its price at the edge (0: never)",
                registry=r,
            ),
            rounds=Counter(
                "shelfedge_canary_rounds", "Canary rounds by outcome", ["outcome"], registry=r
            ),
        )


@dataclass(frozen=True, slots=True)
class CanaryResult:
    """What one round did."""

    outcome: str
    """``ok``, ``timeout`` or ``error``."""
    event_id: str
    price_cents: int
    seconds: float
    """Produce -> seen at the edge (ok), or how long the round waited."""
    detail: str = ""


def next_price(previous: int | None, now: float) -> int:
    """A canary price that differs from `previous` (cycling above the base price)."""
    price = CANARY_BASE_PRICE_CENTS + int(now * 10) % PRICE_STEPS
    if price == previous:
        price = CANARY_BASE_PRICE_CENTS + (price - CANARY_BASE_PRICE_CENTS + 1) % PRICE_STEPS
    return price


def later_prices(price: int, span_s: float) -> tuple[int, ...]:
    """`price` and the canary prices of the `span_s` seconds of rounds that follow it."""
    step = price - CANARY_BASE_PRICE_CENTS
    ticks = min(int(span_s * 10) + 1, PRICE_STEPS // 2)
    return tuple(CANARY_BASE_PRICE_CENTS + (step + k) % PRICE_STEPS for k in range(ticks + 1))


def shown_price(html: str) -> str | None:
    """The price text of the canary's card in a slot's HTML (None: no canary card)."""
    match = _CANARY_PRICE.search(html)
    return unescape(match.group(1)).strip() if match else None


class FreshnessCanary:
    """Runs canary rounds against one edge through one event sink."""

    def __init__(
        self,
        config: CanaryConfig,
        sink: EventSink,
        http: httpx.AsyncClient,
        metrics: CanaryMetrics,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.sink = sink
        self.http = http
        self.metrics = metrics
        self.wall_clock = wall_clock
        self.last_price: int | None = None

    def _cookie(self) -> str:
        """The canary's own visitor id and its segment cookie, bound to that id."""
        expires = int(self.wall_clock()) + COOKIE_TTL_S
        segment = sign_segment(
            CANARY_SEGMENT_ID, expires, self.config.segment_secret, CANARY_VISITOR_ID
        )
        return f"{VISITOR_COOKIE}={CANARY_VISITOR_ID}; {COOKIE_NAME}={segment}"

    async def edge_price(self) -> str | None:
        """The canary card's price text the edge serves now (None: no canary card)."""
        response = await self.http.get(
            f"{self.config.edge_url.rstrip('/')}/se/slot/{self.config.slot}",
            params={"locale": self.config.locale},
            headers={"cookie": self._cookie()},
        )
        return shown_price(response.text) if response.status_code == 200 else None

    async def round(self) -> CanaryResult:
        """Produce one canary price change and wait until the edge serves it."""
        now = self.wall_clock()
        price = next_price(self.last_price, now)
        event = PriceEvent(
            event_id=f"canary-{uuid.uuid4().hex}",
            sku=CANARY_SKU,
            price_cents=price,
            currency=CANARY_CURRENCY,
            version=time.time_ns() // 1000,
            occurred_at=datetime.fromtimestamp(now, UTC),
        )
        fresh = [
            format_money(later, CANARY_CURRENCY, self.config.locale)
            for later in later_prices(price, self.config.timeout_s)
        ]
        want, fresh_texts = fresh[0], frozenset(fresh)
        started = time.monotonic()
        try:
            await self.sink.send(event)
            await self.sink.flush()
            self.last_price = price
            while (waited := time.monotonic() - started) < self.config.timeout_s:
                try:
                    if await self.edge_price() in fresh_texts:
                        return self._record(CanaryResult("ok", event.event_id, price, waited))
                except httpx.HTTPError as exc:
                    log.debug("canary: edge request failed: %s", exc)
                await asyncio.sleep(self.config.poll_s)
            return self._record(
                CanaryResult(
                    "timeout", event.event_id, price, waited, f"edge never showed {want} or later"
                )
            )
        except Exception as exc:  # a round never kills the canary: count it and go on
            waited = time.monotonic() - started
            detail = f"{type(exc).__name__}: {exc}"
            return self._record(CanaryResult("error", event.event_id, price, waited, detail))

    def _record(self, result: CanaryResult) -> CanaryResult:
        self.metrics.rounds.labels(result.outcome).inc()
        fields = {
            "event": "canary_round",
            "outcome": result.outcome,
            "event_id": result.event_id,
            "seconds": round(result.seconds, 4),
        }
        if result.outcome == "ok":
            self.metrics.freshness.observe(result.seconds)
            self.metrics.last_success.set(self.wall_clock())
            log.info("canary round ok: %.3fs", result.seconds, extra=fields)
        else:
            log.warning(
                "canary round %s after %.1fs: %s",
                result.outcome, result.seconds, result.detail, extra=fields,
            )  # fmt: skip
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every `interval_s` until `stop` is set."""
        while not stop.is_set():
            started = time.monotonic()
            await self.round()
            delay = self.config.interval_s - (time.monotonic() - started)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
