"""The storefront composed at the edge, in real headless Chromium, against its client-fetch version.

Through the local edge of the running stack (`tests.browser.stack`), each page is opened with a
script installed before any of the page's own (`OBSERVE`): a MutationObserver notes whether the
text "Loading" is ever in the document, and a PerformanceObserver sums the page's layout shifts
(cumulative layout shift, CLS) with the elements they moved. The requests the page makes are
recorded too.

Proved: the composed home, product and cart pages never show "Loading", have a CLS of 0, make
no ``/se/slot`` request and show their slot's cards as they arrive (the edge put them in the
HTML); the cart upsell leaves out what is in the cart. The edge is warmed first (`warm`): these
are the cached-slot pages. Measured in the same test, the
client-fetch version (``?render=client``) shows "Loading" and shifts its layout when its slot
arrives: its ``/se/slot`` answers are held 300 ms by the test (a mobile round trip), so the
page is painted before they land as it would be on a real network (loopback is too fast to
show it). The script of the composed pages still sends beacons and keeps the cart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, Request, Route, ViewportSize, expect

from tests.browser.stack import Stack

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
SLOT_DELAY_S = 0.3
SETTLE_S = 1.0
"""Seconds to keep observing after the load event (late shifts, late slots)."""
OBSERVE = """
(() => {
  window.__se = { sawLoading: false, cls: 0, shifts: [] };
  const check = () => {
    const root = document.documentElement;
    if (root && root.textContent.includes("Loading")) { window.__se.sawLoading = true; }
  };
  new MutationObserver(check).observe(
    document, { childList: true, subtree: true, characterData: true });
  document.addEventListener("readystatechange", check);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.hadRecentInput) { continue; }
      window.__se.cls += entry.value;
      const nodes = entry.sources.map((s) => s.node && s.node.nodeType === 1
        ? s.node.tagName + "." + s.node.className : String(s.node));
      window.__se.shifts.push({ value: entry.value, nodes: nodes });
    }
  }).observe({ type: "layout-shift", buffered: true });
})();
"""


@dataclass(frozen=True, slots=True)
class Visit:
    """What one page load showed."""

    saw_loading: bool
    cls: float
    shifts: list[dict[str, Any]]
    slot_requests: list[str]
    cards: int


async def visit(browser: Browser, url: str, slot: str, *, hold_slots: bool = False) -> Visit:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await context.add_cookies([{"name": "se_consent", "value": "1", "url": url}])
        page = await context.new_page()
        await page.add_init_script(OBSERVE)
        slot_requests: list[str] = []

        def note(request: Request) -> None:
            if "/se/slot/" in request.url:
                slot_requests.append(request.url)

        page.on("request", note)
        if hold_slots:

            async def held(route: Route) -> None:
                await asyncio.sleep(SLOT_DELAY_S)
                await route.continue_()

            await page.route("**/se/slot/**", held)
        await page.goto(url, wait_until="load")
        items = page.locator(f'.slot-host[data-se-slot="{slot}"] .se-item')
        await expect(items.first).to_be_visible()
        await asyncio.sleep(SETTLE_S)
        observed = await page.evaluate("window.__se")
        return Visit(
            saw_loading=bool(observed["sawLoading"]),
            cls=float(observed["cls"]),
            shifts=list(observed["shifts"]),
            slot_requests=slot_requests,
            cards=await items.count(),
        )
    finally:
        await context.close()


async def warm(edge_url: str, paths: tuple[str, ...] = ("/",), cookie: str = "") -> None:
    """Until the edge composes each page from its cache: a fresh stack's first origin fetches
    can take longer than a slot's budget (that page gets the client-fill fallback, tested in
    tests/edge), and these tests are about the cached case. The cart page's upsell is anchored
    on the cart: warm it with the cart it will show (`cookie`)."""
    headers = {"cookie": cookie} if cookie else {}
    async with httpx.AsyncClient(base_url=edge_url, timeout=10.0, headers=headers) as client:
        for path in paths:
            for _ in range(50):
                page = await client.get(path)
                if b" HIT decision=" in page.content:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the edge never served {path} with a cached slot")


async def test_composed_storefront_never_loads_or_shifts_unlike_the_client_fetch_one(
    stack: Stack, browser: Browser
) -> None:
    await warm(stack.edge_url)
    composed = await visit(browser, stack.edge_url + "/", "home-hero")
    client = await visit(browser, stack.edge_url + "/?render=client", "home-hero", hold_slots=True)
    print(f"composed: CLS {composed.cls:.4f}; client-fetch: CLS {client.cls:.4f} {client.shifts}")

    assert not composed.saw_loading
    assert composed.cls == 0, composed.shifts
    assert composed.slot_requests == []
    assert composed.cards == 12
    assert client.saw_loading
    assert client.cls > 0, "the client-fetch version was expected to shift when its slot landed"
    assert len(client.slot_requests) == 1
    assert client.cards == composed.cards


async def first_product(page: Page) -> str:
    item = page.locator('.slot-host[data-se-slot="home-hero"] .se-item').first
    return str(await item.get_attribute("data-se-sku"))


async def test_product_and_cart_pages_arrive_complete(stack: Stack, browser: Browser) -> None:
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        await context.add_cookies([{"name": "se_consent", "value": "1", "url": stack.edge_url}])
        page = await context.new_page()
        slot_requests: list[str] = []
        page.on("request", lambda r: slot_requests.append(r.url) if "/se/slot/" in r.url else None)
        await warm(stack.edge_url)
        await page.goto(stack.edge_url + "/")
        sku = await first_product(page)
        await warm(stack.edge_url, (f"/products/{sku}",))

        await page.goto(f"{stack.edge_url}/products/{sku}")
        cross = page.locator('.slot-host[data-se-slot="product-cross-sell"] .se-item')
        await expect(cross.first).to_be_visible()
        assert await page.locator(".product__title").is_visible()
        await page.locator(".product__add").click()
        await expect(page.locator("#cart")).to_have_text("Cart: 1")
        other = cross.filter(has_not=page.locator(f'[data-sku="{sku}"]')).first
        async with page.expect_response(lambda r: r.url.endswith("/se/events")) as beacon:
            await other.locator("button:has-text('Add to cart')").click()
        assert (await beacon.value).status == 202
        added = str(await other.get_attribute("data-se-sku"))
        await expect(page.locator("#cart")).to_have_text("Cart: 2")

        await warm(stack.edge_url, ("/cart",), f"se_consent=1; se_cart={sku}|{added}")
        await page.goto(f"{stack.edge_url}/cart")
        await expect(page.locator("#cart-items li")).to_have_count(2)
        upsell = page.locator('.slot-host[data-se-slot="cart-complete"] .se-item')
        await expect(upsell.first).to_be_visible()
        shown = set(await upsell.evaluate_all("els => els.map(e => e.dataset.seSku)"))
        assert not shown & {sku, added}, "the upsell shows what is already in the cart"
        assert "Loading" not in await page.content()
        assert slot_requests == []
    finally:
        await context.close()


@pytest.mark.parametrize("path", ["/", "/cart"])
async def test_composed_pages_are_private_and_say_so(
    stack: Stack, browser: Browser, path: str
) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        response = await page.goto(stack.edge_url + path)
        assert response is not None
        headers = await response.all_headers()
        assert headers["cache-control"] == "private, no-store"
        assert headers["x-shelfedge-compose"] == "stream"
        assert "<!-- shelfedge composed" in await response.text()
    finally:
        await context.close()
