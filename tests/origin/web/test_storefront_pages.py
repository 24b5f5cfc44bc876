"""The storefront's page shells: shared and cacheable, one placeholder per slot, no visitor data.

Served by the origin app (httpx in-process) over the seeded Redis of `tests/origin/conftest.py`.
"""

from __future__ import annotations

import httpx
import pytest

from edge.compose import PageRewriter, Placeholder
from fragments.bundle import decode_bundle


def placeholders(body: bytes) -> list[Placeholder]:
    rewriter = PageRewriter()
    pieces = [*rewriter.feed(body), *rewriter.close()]
    return [p for p in pieces if isinstance(p, Placeholder)]


@pytest.mark.parametrize(
    ("path", "slot"),
    [("/", "home-hero"), ("/cart", "cart-complete")],
)
async def test_shells_are_shared_with_a_placeholder_per_slot(
    origin_client: httpx.AsyncClient, path: str, slot: str
) -> None:
    page = await origin_client.get(path, headers={"cookie": "se_vid=" + "a" * 32})
    assert page.status_code == 200
    assert page.headers["cache-control"] == "public, max-age=30"
    assert "set-cookie" not in page.headers
    assert [p.slot for p in placeholders(page.content)] == [slot]
    assert "Loading" not in page.text
    assert "a" * 32 not in page.text


async def test_product_page_anchors_the_cross_sell(origin_client: httpx.AsyncClient) -> None:
    home = await origin_client.get("/?render=client")
    assert "Loading" in home.text  # the client-fetch version keeps its placeholders
    assert placeholders(home.content) == []
    bundle = decode_bundle(
        (await origin_client.get("/v1/bundles/home-hero?segment=everyone")).content
    )
    sku = bundle.candidates[0].sku

    page = await origin_client.get(f"/products/{sku}")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "public, max-age=30"
    [found] = placeholders(page.content)
    assert (found.slot, found.anchor) == ("product-cross-sell", sku)
    assert f'data-sku="{sku}"' in page.text


@pytest.mark.parametrize("sku", ["NO-SUCH-SKU", "bad sku!"])
async def test_unknown_product_is_404(origin_client: httpx.AsyncClient, sku: str) -> None:
    assert (await origin_client.get(f"/products/{sku}")).status_code == 404
