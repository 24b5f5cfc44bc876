"""``GET /v1/bundles/{slot}?anchor=SKU``: anchored bundles built on request, against the seeded
Redis of the origin tests."""

from __future__ import annotations

import httpx
import pytest

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.tags import sku_tag

ANCHOR = "SKU-00007"
KEY = FragmentKey.anchored("product-cross-sell", ANCHOR)


async def test_anchored_bundle_relates_to_its_anchor_and_is_tagged_with_it(
    origin_client: httpx.AsyncClient,
) -> None:
    anchor = (await origin_client.get(f"/v1/products/{ANCHOR}")).json()["card"]
    response = await origin_client.get(KEY.bundle_path())
    assert response.status_code == 200, response.text
    bundle = decode_bundle(response.content)
    assert bundle.key == KEY
    assert bundle.candidates
    assert ANCHOR not in bundle.skus
    assert all(
        c.category == anchor["category"] or c.brand == anchor["brand"] for c in bundle.candidates
    )
    tags = response.headers["cache-tag"].split(",")
    assert sku_tag(ANCHOR) in tags
    assert not any(t.startswith("segment:") for t in tags)
    again = await origin_client.get(KEY.bundle_path(), headers={"if-none-match": bundle.etag})
    assert again.status_code == 304


async def test_each_anchor_has_its_own_bundle(origin_client: httpx.AsyncClient) -> None:
    other = FragmentKey.anchored("product-cross-sell", "SKU-00100")
    a = decode_bundle((await origin_client.get(KEY.bundle_path())).content)
    b = decode_bundle((await origin_client.get(other.bundle_path())).content)
    assert a.skus != b.skus


@pytest.mark.parametrize(
    ("path", "status", "name"),
    [
        ("/v1/bundles/product-cross-sell?anchor=SKU-99999", 404, "product"),
        ("/v1/bundles/product-cross-sell?anchor=SKU-00007&variant=made-up", 404, "variant"),
        ("/v1/bundles/product-cross-sell?anchor=SKU-00007&locale=fr-FR", 404, "locale"),
        ("/v1/bundles/product-cross-sell?segment=everyone", 422, "anchor"),
        ("/v1/bundles/home-hero?anchor=SKU-00007", 422, "segment"),
        ("/v1/bundles/product-cross-sell?anchor=SKU-00007&segment=everyone", 422, "segment"),
        ("/v1/bundles/product-cross-sell?anchor=bad%20sku", 422, "sku"),
    ],
)
async def test_wrong_anchored_requests_name_the_problem(
    origin_client: httpx.AsyncClient, path: str, status: int, name: str
) -> None:
    response = await origin_client.get(path)
    assert response.status_code == status, response.text
    names = [p["name"] for p in response.json()["invalid_params"]]
    assert names == [name]


async def test_cart_slot_anchors_are_served_too(origin_client: httpx.AsyncClient) -> None:
    key = FragmentKey.anchored("cart-complete", ANCHOR)
    response = await origin_client.get(key.bundle_path())
    assert response.status_code == 200
    assert decode_bundle(response.content).rerank.shown == 4
