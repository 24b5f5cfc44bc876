"""The origin API against a real, seeded Redis: bundles, fragments, products, health, metrics."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from edge.assemble import assemble
from edge.context import ShopperContext
from edge.rerank import rerank
from fragments.bundle import decode_bundle
from fragments.headers import cache_headers
from fragments.ids import FragmentKey
from fragments.render import Renderer
from fragments.tags import sku_tag
from origin.core.demo_catalog import generate_catalog
from origin.core.seed import SeedReport
from origin.core.store import Store
from origin.web.routes.bundles import BUNDLE_MEDIA_TYPE
from tests.origin.conftest import SEEDED_SEED, SEEDED_SKUS

HERO = "/v1/bundles/home-hero?segment=everyone"
CACHE_HEADERS = (
    "cache-control", "cdn-cache-control", "surrogate-control", "cache-tag", "surrogate-key",
    "xkey", "etag", "vary",
)  # fmt: skip


def test_the_seed_built_every_bundle(seeded_origin_store: tuple[Store, SeedReport]) -> None:
    _, report = seeded_origin_store
    assert (report.products, report.segments) == (SEEDED_SKUS, 7)
    assert report.bundles == 3 * 7 * 2  # slots x segments x locales (control only)


@pytest.mark.parametrize(
    "key",
    [
        FragmentKey("home-hero", "everyone"),
        FragmentKey("pdp-cross-sell", "tech-enthusiasts", "control", "de-DE"),
        FragmentKey("cart-upsell", "young-families", "control", "en-US"),
    ],
    ids=lambda k: k.cache_key,
)
async def test_bundle_200_with_every_cache_header_and_a_decodable_body(
    origin_client: httpx.AsyncClient, key: FragmentKey
) -> None:
    response = await origin_client.get(key.bundle_path())

    assert response.status_code == 200
    assert response.headers["content-type"] == BUNDLE_MEDIA_TYPE
    bundle = decode_bundle(response.content)
    assert bundle.key == key
    assert bundle.candidates
    for name in CACHE_HEADERS:
        assert response.headers.get(name), f"missing {name}"
    expected = cache_headers(key, bundle.policy, bundle.tags, bundle.content_hash)
    for name, value in expected:
        assert response.headers[name] == value
    assert response.headers["etag"] == bundle.etag
    tags = response.headers["cache-tag"].split(",")
    assert {sku_tag(s) for s in bundle.skus} <= set(tags)
    assert "s-maxage=" in response.headers["cache-control"]


async def test_query_parameter_order_and_defaults_do_not_matter(
    origin_client: httpx.AsyncClient,
) -> None:
    a = await origin_client.get(HERO)
    b = await origin_client.get(
        "/v1/bundles/home-hero?locale=en-US&variant=control&segment=everyone"
    )
    assert a.status_code == b.status_code == 200
    assert a.content == b.content


@pytest.mark.parametrize("path", [HERO, HERO.replace("bundles", "fragments")])
async def test_if_none_match_answers_304(origin_client: httpx.AsyncClient, path: str) -> None:
    etag = (await origin_client.get(path)).headers["etag"]

    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = await origin_client.get(path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-tag"]

    changed = await origin_client.get(path, headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["cache-control"] == "no-store"
    doc: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= set(doc)
    assert doc["status"] == response.status_code
    return doc


@pytest.mark.parametrize(
    ("path", "kind", "value"),
    [
        ("/v1/bundles/nope?segment=everyone", "slot", "nope"),
        ("/v1/bundles/home-hero?segment=nobody", "segment", "nobody"),
        ("/v1/bundles/home-hero?segment=everyone&variant=b", "variant", "b"),
        ("/v1/bundles/home-hero?segment=everyone&locale=fr-FR", "locale", "fr-FR"),
        ("/v1/fragments/nope?segment=everyone", "slot", "nope"),
        ("/v1/fragments/home-hero?segment=nobody", "segment", "nobody"),
    ],
)
async def test_unknown_entities_are_404_naming_them(
    origin_client: httpx.AsyncClient, path: str, kind: str, value: str
) -> None:
    response = await origin_client.get(path)

    assert response.status_code == 404
    doc = _problem(response)
    assert doc["invalid_params"] == [{"name": kind, "reason": "does not exist"}]
    assert f"unknown {kind} {value!r}" == doc["detail"]


@pytest.mark.parametrize(
    ("path", "names"),
    [
        ("/v1/bundles/home-hero", ["segment"]),
        ("/v1/bundles/home-hero?segment=everyone&colour=red", ["colour"]),
        ("/v1/bundles/home-hero?segment=everyone&b=1&a=2", ["a", "b"]),
        ("/v1/bundles/home-hero?segment=Every%20One", ["segment"]),
        ("/v1/bundles/home-hero?segment=everyone&variant=B!", ["variant"]),
        ("/v1/bundles/home-hero?segment=everyone&locale=english", ["locale"]),
        ("/v1/bundles/Home_Hero?segment=everyone", ["slot"]),
        ("/v1/fragments/home-hero?segment=", ["segment"]),
        ("/v1/products/bad%20sku", ["sku"]),
    ],
)
async def test_bad_missing_or_extra_parameters_are_422_naming_them(
    origin_client: httpx.AsyncClient, path: str, names: list[str]
) -> None:
    response = await origin_client.get(path)

    assert response.status_code == 422
    doc = _problem(response)
    assert [p["name"] for p in doc["invalid_params"]] == names
    assert all(p["reason"] for p in doc["invalid_params"])


async def test_fragment_is_assembled_from_stored_cards_without_rendering_templates(
    origin_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rendering(self: Renderer, template: str, **context: object) -> str:
        raise AssertionError(f"template {template} rendered on the fragment path")

    monkeypatch.setattr(Renderer, "_render", no_rendering)
    bundle = decode_bundle((await origin_client.get(HERO)).content)

    response = await origin_client.get(HERO.replace("bundles", "fragments"))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    anonymous = ShopperContext.anonymous("everyone")
    expected = assemble(bundle, rerank(bundle.candidates, bundle.rerank, anonymous), "control")
    assert response.text == expected
    assert response.text.count('class="se-item"') == bundle.rerank.shown
    assert response.headers["etag"] == bundle.etag
    assert response.headers["cache-tag"]


async def test_product_document(origin_client: httpx.AsyncClient) -> None:
    expected = generate_catalog(SEEDED_SEED, SEEDED_SKUS).products[7]

    response = await origin_client.get(f"/v1/products/{expected.sku}")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    doc = response.json()
    assert doc["sku"] == expected.sku
    assert doc["card"]["price_cents"] == expected.price_cents
    assert doc["card"]["url"] == f"/products/{expected.sku}"
    assert doc["card"]["stock_state"] in ("in_stock", "low_stock", "sold_out")


async def test_unknown_product_is_404(origin_client: httpx.AsyncClient) -> None:
    response = await origin_client.get("/v1/products/SKU-99999")
    assert response.status_code == 404
    assert _problem(response)["invalid_params"] == [{"name": "sku", "reason": "does not exist"}]


async def test_health_readiness_and_metrics(origin_client: httpx.AsyncClient) -> None:
    health = await origin_client.get("/healthz")
    ready = await origin_client.get("/readyz")
    await origin_client.get(HERO)
    await origin_client.get("/v1/bundles/nope?segment=everyone")

    metrics = await origin_client.get("/metrics")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "redis": "ok"})
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'shelfedge_origin_bundle_requests_total{endpoint="bundle",status="200"}' in text
    assert 'shelfedge_origin_bundle_requests_total{endpoint="bundle",status="404"}' in text
    assert "shelfedge_origin_request_seconds_bucket" in text


async def test_storefront_and_static_are_served(origin_client: httpx.AsyncClient) -> None:
    page = await origin_client.get("/")
    persona = await origin_client.get("/?persona=tech-enthusiasts")
    image = await origin_client.get("/static/img/audio.svg")
    css = await origin_client.get("/static/store.css")

    assert page.status_code == 200
    assert "se_seg" not in page.headers.get("set-cookie", "")
    assert "se_seg=v2.0.tech-enthusiasts." in persona.headers["set-cookie"]
    assert image.headers["content-type"] == "image/svg+xml"
    assert css.status_code == 200
