"""Recommendations follow the shopper through the Worker under real workerd, in front of a real
origin, Redis, broker and context processor: behaviour beacons leave the Worker in signed
background batches (``waitUntil``) for the clickstream; the segment cookie is refreshed in
``waitUntil`` and the refreshed cookie decides and is set on the next response (three views of
a category move the next page's slots within two page views); the product page's cross-sell
is about its product; the cart upsell follows the cart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from fragments.segment_cookie import COOKIE_NAME, read_segment
from tests.support.context_stack import (
    CATEGORY,
    EDGE_TOKEN,
    EVENT_KEYS_SETTING,
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
from tests.support.workerd import DevSettings, WranglerDev, prepare_worker

HERO = "home-hero"
THINK_TIME_S = 1.5


@pytest.fixture
async def stack(redis_url: str, tansu_bootstrap: str) -> AsyncIterator[ContextStack]:
    async with context_stack(redis_url, tansu_bootstrap) as running:
        yield running


@pytest.fixture
def worker(stack: ContextStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WranglerDev]:
    worker_dir = prepare_worker(tmp_path_factory.mktemp("workerd") / "worker")
    settings = DevSettings(
        worker_dir=worker_dir,
        state_dir=tmp_path_factory.mktemp("wrangler-state"),
        variables={
            "ORIGIN_URL": stack.origin.url,
            "SEGMENT_SECRET": SECRET,
            "EVENT_KEYS": EVENT_KEYS_SETTING,
            "EDGE_CONFIG_TOKEN": EDGE_TOKEN,
            "SHELFEDGE_ENV": "dev",
            "PASS_THROUGH": "/,/static/,/products/,/cart",  # the demo storefront's pages
        },
    )
    with WranglerDev(settings) as dev:
        yield dev


@pytest.mark.timeout(300)
async def test_slots_follow_the_shopper_under_workerd(
    stack: ContextStack, worker: WranglerDev
) -> None:
    async with httpx.AsyncClient(base_url=worker.base_url, timeout=30.0, trust_env=False) as edge:
        await warm(edge)
        shopper = Shopper(edge)
        first = await shopper.page("/")
        assert first.slot_segments()[HERO] == "everyone", first.html[-500:]
        skus = await products_of(edge, CATEGORY, 3)
        products = [await shopper.view(sku) for sku in skus]
        one = await shopper.page("/")  # served from the cookie it has; refresh in waitUntil
        await asyncio.sleep(THINK_TIME_S)
        two = await shopper.page("/")
        assert two.slot_segments()[HERO] == SEGMENT, (one.slot_segments(), two.slot_segments())
        assert any(c.startswith(f"{COOKIE_NAME}=") for c in two.set_cookies)
        grant = read_segment(shopper.jar[COOKIE_NAME], 0, SECRET, shopper.visitor)
        assert grant is not None
        assert grant.segment == SEGMENT
        assert stack.processor.stats.folded >= 3  # the Worker's clickstream batches arrived

        # beacons alone start the refresh (in the beacon's waitUntil): with no page request
        # between the views and the next page, that page already has the new segment
        views = [view_beacon(product) for product in products]
        first, after = await pages_around_beacons(Shopper(edge), stack.processor, views)
        assert first.slot_segments()[HERO] == "everyone"
        assert after.slot_segments()[HERO] == SEGMENT

        # the product page's cross-sell is about its product
        (other,) = await products_of(edge, "kitchen", 1)
        page_a = await shopper.page(f"/products/{skus[0]}")
        page_k = await shopper.page(f"/products/{other}")
        items_a, items_k = page_a.items(), page_k.items()
        assert items_a, page_a.html[-800:]
        assert items_k, page_k.html[-800:]
        assert skus[0] not in items_a
        assert set(items_a) != set(items_k)

        # the cart upsell follows the cart and never shows what is in it
        shopper.jar["se_cart"] = skus[0]
        cart_a = (await shopper.page("/cart")).items()
        shopper.jar["se_cart"] = f"{other}|{skus[1]}"
        cart_b = (await shopper.page("/cart")).items()
        assert cart_a, "no upsell for a one-item cart"
        assert cart_b, "no upsell for a two-item cart"
        assert cart_a != cart_b
        assert skus[0] not in cart_a
        assert not {other, skus[1]} & set(cart_b)
