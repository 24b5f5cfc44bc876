"""A retailer's own catalog in a real browser: import a small Merchant Center feed through the
API, open the storefront through the local edge, and see those products with their images and
links; then a catalog.v1 content event travels Kafka -> consumer -> purge -> edge, and the
storefront's card shows the new title and image.

The stack is `tests.browser.stack.running_stack()` plus the invalidation service (consumer and
local-edge purge worker) run in this event loop for the second half.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect

from invalidation.events import CatalogEvent
from invalidation.service import running_service
from invalidation.settings import InvalidationSettings
from tests.browser.stack import Stack
from tests.invalidation.support import eventually, produce
from tests.origin.ingest.support import tsv

SLOT = "home-hero"
FEED_ITEMS = 60
_FEED_SKU = re.compile(r"^FEED-\d{6}$")


@asynccontextmanager
async def invalidation(stack: Stack) -> AsyncIterator[None]:
    """The consumer and its local-edge purge worker, purging the stack's edge."""
    settings = InvalidationSettings(
        redis_url=stack.redis_url,
        kafka_bootstrap=stack.kafka_bootstrap,
        coalesce_ms=20,
        consumer_group="browser-catalog",
        consumer_session_timeout_ms=3000,
        consumer_metrics_port=0,
        purgers=("local-edge",),
        local_edge_url=stack.edge_url,
    )
    stop = asyncio.Event()
    async with running_service(settings) as service:
        tasks = [asyncio.create_task(w.run(stop)) for w in service.workers]
        tasks.append(asyncio.create_task(service.consumer.run(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def cards(page: Page, edge_url: str) -> list[dict[str, str]]:
    """The product cards of the hero slot as a shopper's browser shows them."""
    await page.goto(edge_url + "/")
    items = page.locator(f'.slot-host[data-se-slot="{SLOT}"] .se-card')
    await expect(items.first).to_be_visible()
    found: list[dict[str, str]] = await items.evaluate_all(
        """els => els.map(e => ({
            sku: e.dataset.sku,
            href: e.querySelector('a.se-card__link').getAttribute('href'),
            src: e.querySelector('img').getAttribute('src'),
            loading: e.querySelector('img').getAttribute('loading'),
            width: e.querySelector('img').getAttribute('width'),
            title: e.querySelector('.se-card__title').textContent,
        }))"""
    )
    return found


async def test_an_imported_feed_shows_in_the_storefront_and_a_content_event_updates_it(
    stack: Stack, browser: Browser, screenshots: Path
) -> None:
    async with httpx.AsyncClient(base_url=stack.origin_url, timeout=60) as client:
        response = await client.post(
            "/v1/catalog/imports",
            content=tsv(FEED_ITEMS),
            headers={"Authorization": f"Bearer {stack.editor_token}"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == FEED_ITEMS
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        shown = await cards(page, stack.edge_url)
        assert shown
        for card in shown:  # only the feed's products, with their own image and link
            assert _FEED_SKU.match(card["sku"]), card
            assert card["href"] == f"https://shop.example/products/{card['sku']}"
            assert card["src"] == f"https://cdn.shop.example/img/{card['sku']}.jpg"
            assert (card["loading"], card["width"]) == ("lazy", "240")
        (screenshots / "storefront-imported-feed.png").write_bytes(await page.screenshot())

        target = shown[0]["sku"]
        new_image = "https://cdn.shop.example/img/fixed.jpg"
        async with invalidation(stack):
            await produce(
                stack.kafka_bootstrap,
                [
                    CatalogEvent(
                        "browser-title-fix", target, 1, datetime.now(UTC),
                        title="Title fixed by an event", image_link=new_image,
                    )
                ],
            )  # fmt: skip

            async def updated() -> bool:
                now = {c["sku"]: c for c in await cards(page, stack.edge_url)}
                card = now.get(target)
                return card is not None and card["title"] == "Title fixed by an event"

            await eventually(updated, within=60, interval=0.5, what="the card shows the fix")
        card = {c["sku"]: c for c in await cards(page, stack.edge_url)}[target]
        assert card["src"] == new_image
    finally:
        await context.close()
