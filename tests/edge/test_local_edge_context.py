"""Recommendations follow the shopper through the local edge, against a real origin, Redis,
broker and context processor: behaviour beacons reach the clickstream and move the segment
within two page views (the refreshed cookie decides and is set on the next response); the
product page's cross-sell is about its product; the cart upsell follows the cart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from fragments.segment_cookie import COOKIE_NAME, read_segment
from tests.support.context_stack import (
    CATEGORY,
    SECRET,
    SEGMENT,
    ContextStack,
    Shopper,
    context_stack,
    pages_around_beacons,
    products_of,
    view_beacon,
    warm,
)

HERO = "home-hero"
THINK_TIME_S = 1.5
"""A shopper's pause between two page views (shorter than any person's)."""


@pytest.fixture
async def stack(redis_url: str, kafka_bootstrap: str) -> AsyncIterator[ContextStack]:
    async with context_stack(redis_url, kafka_bootstrap) as running:
        yield running


@pytest.fixture
async def edge(stack: ContextStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.edge.url, timeout=10) as client:
        yield client


async def test_three_views_of_a_category_move_the_next_pages_slots(
    stack: ContextStack, edge: httpx.AsyncClient
) -> None:
    await warm(edge)
    shopper = Shopper(edge)
    first = await shopper.page("/")
    assert first.slot_segments()[HERO] == "everyone"
    for sku in await products_of(edge, CATEGORY, 3):
        await shopper.view(sku)
    # page view 1 after the behaviour: still served from the cookie the browser has (no
    # round trip on the hot path); the refresh runs in the background
    one = await shopper.page("/")
    await asyncio.sleep(THINK_TIME_S)
    two = await shopper.page("/")
    assert two.slot_segments()[HERO] == SEGMENT, (one.slot_segments(), two.slot_segments())
    cookie = next(c for c in two.set_cookies if c.startswith(f"{COOKIE_NAME}="))
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    value = shopper.jar[COOKIE_NAME]
    grant = read_segment(value, 0, SECRET, shopper.visitor)
    assert grant is not None
    assert grant.segment == SEGMENT
    assert read_segment(value, 0, SECRET, "0" * 32) is None  # bound to this visitor
    # the browser sends the refreshed cookie now: same slots, nothing more to set
    three = await shopper.page("/")
    assert three.slot_segments()[HERO] == SEGMENT
    assert not any(c.startswith(f"{COOKIE_NAME}=") for c in three.set_cookies)
    # the events went through the edge's clickstream batches to the processor
    assert stack.processor.stats.folded >= 3
    metrics = (await edge.get("/se/metrics")).text
    assert 'shelfedge_edge_clickstream_total{outcome="sent"} 3.0' in metrics


async def test_beacons_alone_start_the_refresh_so_the_next_page_has_the_segment(
    stack: ContextStack, edge: httpx.AsyncClient
) -> None:
    """No page request between the behaviour and the page that should show it: the beacons
    start the chase themselves (`edge.segment_refresh`), so the first page after the
    processor folded the views is decided with the new segment."""
    await warm(edge)
    scout = Shopper(edge)
    scout.jar["se_consent"] = "0"
    views = []
    for sku in await products_of(edge, CATEGORY, 3):
        product = (await scout.page(f"/products/{sku}")).product()
        assert product is not None
        views.append(view_beacon(product))
    first, after = await pages_around_beacons(Shopper(edge), stack.processor, views)
    assert first.slot_segments()[HERO] == "everyone"
    assert after.slot_segments()[HERO] == SEGMENT


async def test_no_consent_no_clickstream_and_no_refresh(
    stack: ContextStack, edge: httpx.AsyncClient
) -> None:
    shopper = Shopper(edge)
    shopper.jar["se_consent"] = "0"
    sent = await shopper.beacon([{"type": "search", "category": CATEGORY}] * 3)
    assert sent["tracked"] == 0
    assert sent["untracked"] == {"no_consent": 3}
    page = await shopper.page("/")
    await asyncio.sleep(0.5)
    again = await shopper.page("/")
    assert page.slot_segments()[HERO] == again.slot_segments()[HERO] == "everyone"
    assert not any(c.startswith(f"{COOKIE_NAME}=") for c in page.set_cookies + again.set_cookies)


async def test_cross_sell_is_about_its_product_and_the_upsell_follows_the_cart(
    stack: ContextStack, edge: httpx.AsyncClient
) -> None:
    shopper = Shopper(edge)
    a, b = await products_of(edge, CATEGORY, 2)
    (other,) = await products_of(edge, "kitchen", 1)
    page_a = await shopper.page(f"/products/{a}")
    page_k = await shopper.page(f"/products/{other}")
    items_a, items_k = page_a.items(), page_k.items()
    assert items_a, page_a.html
    assert items_k, page_k.html
    assert a not in items_a
    assert set(items_a) != set(items_k)
    categories = [(await shopper.page(f"/products/{sku}")).product() for sku in items_a]
    related = [p for p in categories if p is not None and p[1] == CATEGORY]
    assert len(related) >= len(items_a) // 2, categories  # similar products first
    shopper.jar["se_cart"] = a
    cart_a = (await shopper.page("/cart")).items()
    shopper.jar["se_cart"] = f"{other}|{b}"
    cart_b = (await shopper.page("/cart")).items()
    assert cart_a, "no upsell for a one-item cart"
    assert cart_b, "no upsell for a two-item cart"
    assert cart_a != cart_b
    assert a not in cart_a
    assert other not in cart_b
    assert b not in cart_b
