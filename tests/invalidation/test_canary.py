"""The freshness canary: its pure parts, and rounds end to end through a real broker, consumer,
Redis, origin and local edge (`tests.support.live_stack`)."""

from __future__ import annotations

import asyncio

import httpx
import msgspec
import pytest

from fragments.render import format_money
from invalidation.canary import (
    FRESHNESS_BUCKETS,
    CanaryConfig,
    CanaryMetrics,
    FreshnessCanary,
    later_prices,
    next_price,
    shown_price,
)
from invalidation.events import Event, PriceEvent
from invalidation.producer import EventProducer
from origin.core.canary import CANARY_SKU
from shelfedge.localstack import KafkaBroker
from tests.support.live_stack import live_stack


def test_next_price_always_moves() -> None:
    for now in (0.0, 1.0, 12.3, 1e9):
        first = next_price(None, now)
        assert next_price(first, now) != first


def test_later_prices_start_at_the_rounds_own_and_follow_the_clock() -> None:
    mine = next_price(None, 1_000.0)
    later = later_prices(mine, span_s=2.0)
    assert later[0] == mine
    assert len(later) == 22, "a price each tenth of a second, both ends counted"
    # A canary started a second after this round picks one of them; one started before, none.
    assert next_price(None, 1_001.0) in later
    assert next_price(None, 999.9) not in later
    # They wrap with the day-long cycle.
    last = next_price(None, 86_399.9)
    assert later_prices(last, 0.1) == (last, next_price(None, 86_400.0), next_price(None, 0.1))


def test_shown_price_reads_the_canary_card_only() -> None:
    html = (
        '<article data-sku="SKU-1"><span class="se-price">$1.00</span></article>'
        f'<article data-sku="{CANARY_SKU}"><p><span class="se-price">$123.45</span></p></article>'
    )
    assert shown_price(html) == "$123.45"
    assert shown_price('<article data-sku="SKU-1"><span class="se-price">$1</span>') is None


def test_the_freshness_histogram_has_the_objectives_bucket() -> None:
    assert 5.0 in FRESHNESS_BUCKETS
    metrics = CanaryMetrics.create()
    metrics.freshness.observe(0.3)
    assert (
        metrics.registry.get_sample_value(
            "shelfedge_canary_freshness_seconds_bucket", {"le": "5.0"}
        )
        == 1.0
    )


@pytest.mark.slow
async def test_canary_rounds_see_their_price_at_the_edge(
    redis_url: str, fresh_kafka_broker: KafkaBroker
) -> None:
    metrics = CanaryMetrics.create()
    async with (
        live_stack(redis_url, fresh_kafka_broker.bootstrap) as stack,
        EventProducer(fresh_kafka_broker.bootstrap) as producer,
        httpx.AsyncClient(timeout=5) as http,
    ):
        config = CanaryConfig(stack.edge.url, stack.segment_secret, timeout_s=20.0)
        canary = FreshnessCanary(config, producer, http, metrics)
        before = await canary.edge_price()
        assert before is not None, "the canary segment's slot shows the canary card"
        results = [await canary.round() for _ in range(3)]
        assert [r.outcome for r in results] == ["ok"] * 3, results
        assert await canary.edge_price() == format_money(results[-1].price_cents, "USD", "en-US")
        # The edge was purged, not expired: home-hero's max-age is 60 s.
        assert all(r.seconds < 10 for r in results), results
        purged = await http.get(stack.edge.url + "/se/metrics")
        assert "shelfedge_edge_purged_total" in purged.text
        # No shopper segment shows the canary.
        shopper = await http.get(stack.edge.url + "/se/slot/home-hero")
        assert CANARY_SKU not in shopper.text
        storefront = await http.get(stack.origin.url + "/?persona=se-canary")
        assert "se_seg" not in storefront.headers.get("set-cookie", "")
        assert "se-canary" not in storefront.text, "the storefront offers no reserved persona"
    registry = metrics.registry
    assert registry.get_sample_value("shelfedge_canary_freshness_seconds_count") == 3
    assert registry.get_sample_value("shelfedge_canary_rounds_total", {"outcome": "ok"}) == 3
    assert (registry.get_sample_value("shelfedge_canary_last_success_timestamp_seconds") or 0) > 0


@pytest.mark.slow
async def test_a_canary_round_with_no_consumer_times_out_and_keeps_the_last_success(
    redis_url: str, fresh_kafka_broker: KafkaBroker
) -> None:
    """A consumer that never fetches: the price never reaches the edge."""
    metrics = CanaryMetrics.create()
    async with (
        live_stack(redis_url, fresh_kafka_broker.bootstrap, consume=False) as stack,
        EventProducer(fresh_kafka_broker.bootstrap) as producer,
        httpx.AsyncClient(timeout=5) as http,
    ):
        config = CanaryConfig(stack.edge.url, stack.segment_secret, timeout_s=2.0)
        result = await FreshnessCanary(config, producer, http, metrics).round()
    assert result.outcome == "timeout"
    assert metrics.registry.get_sample_value("shelfedge_canary_freshness_seconds_count") == 0
    assert metrics.registry.get_sample_value("shelfedge_canary_last_success_timestamp_seconds") == 0


class _AnotherCanaryRightAfter:
    """An event sink where another canary's round starts right after each event: its later
    price goes to the broker with it, so both share the consumer's window."""

    def __init__(self, sink: EventProducer) -> None:
        self.sink = sink
        self.sent: list[PriceEvent] = []

    async def send(self, event: Event) -> None:
        assert isinstance(event, PriceEvent)
        later_round = next_price(event.price_cents, event.occurred_at.timestamp() + 0.5)
        later = msgspec.structs.replace(
            event, event_id=event.event_id + "-other", price_cents=later_round,
            version=event.version + 1,
        )  # fmt: skip
        self.sent += [event, later]
        await self.sink.send(event)
        await self.sink.send(later)

    async def flush(self) -> None:
        await self.sink.flush()


@pytest.mark.slow
async def test_a_round_passes_when_another_canarys_later_price_overtakes_its_own(
    redis_url: str, fresh_kafka_broker: KafkaBroker
) -> None:
    """The deployment's canary and an operator's check at the same time: one's event and the
    other's later one share a window, only the later applies, and the round still passes."""
    async with (
        live_stack(redis_url, fresh_kafka_broker.bootstrap) as stack,
        EventProducer(fresh_kafka_broker.bootstrap) as producer,
        httpx.AsyncClient(timeout=5) as http,
    ):
        config = CanaryConfig(stack.edge.url, stack.segment_secret, timeout_s=10.0)
        sink = _AnotherCanaryRightAfter(producer)
        canary = FreshnessCanary(config, sink, http, CanaryMetrics.create())
        results = [await canary.round() for _ in range(3)]
        assert [r.outcome for r in results] == ["ok"] * 3, results
        assert all(r.seconds < 5 for r in results), results
        last = format_money(sink.sent[-1].price_cents, "USD", "en-US")
        for _ in range(100):
            if await canary.edge_price() == last:
                break
            await asyncio.sleep(0.05)
        assert await canary.edge_price() == last, "the edge ends on the later canary's price"
