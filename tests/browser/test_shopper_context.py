"""A real browser through the demo storefront and the local edge, with the real origin, Redis,
broker and context processor: the storefront's script sends a view beacon from each product
page, and after three views of one category the home page's hero comes from that category's
segment within two page views (the refreshed HttpOnly cookie the script cannot touch)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser

from tests.support.context_stack import (
    CATEGORY,
    SEGMENT,
    ContextStack,
    context_stack,
    products_of,
    warm,
)

HERO = '.slot-host[data-se-slot="home-hero"] .se-slot'


@pytest.fixture
async def context_running(redis_url: str, tansu_bootstrap: str) -> AsyncIterator[ContextStack]:
    async with context_stack(redis_url, tansu_bootstrap) as running:
        yield running


async def test_the_storefront_follows_the_shopper(
    context_running: ContextStack, browser: Browser
) -> None:
    edge_url = context_running.edge.url
    async with httpx.AsyncClient(base_url=edge_url, timeout=10.0) as client:
        await warm(client)
        skus = await products_of(client, CATEGORY, 3)
    context = await browser.new_context()
    try:
        await context.add_cookies([{"name": "se_consent", "value": "1", "url": edge_url}])
        page = await context.new_page()
        await page.goto(edge_url + "/")
        assert await page.locator(HERO).get_attribute("data-segment") == "everyone"
        for sku in skus:
            async with page.expect_response(lambda r: r.url.endswith("/se/events")) as beacon:
                await page.goto(f"{edge_url}/products/{sku}")
            answer = await beacon.value
            assert answer.status == 202
            assert (await answer.json())["tracked"] == 1
        await page.goto(edge_url + "/")
        await asyncio.sleep(1.5)  # a shopper's pause
        await page.goto(edge_url + "/")
        assert await page.locator(HERO).get_attribute("data-segment") == SEGMENT
        cookies = {c["name"]: c for c in await context.cookies()}
        assert cookies["se_seg"]["httpOnly"]
        assert context_running.processor.stats.folded >= 3
    finally:
        await context.close()
