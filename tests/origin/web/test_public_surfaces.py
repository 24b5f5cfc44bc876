"""What an anonymous caller can read from the origin: shopper-visible product fields only, the
edge config only with a token, the demo storefront (which signs segment cookies for anyone)
only in dev."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import httpx
import pytest

from fragments.segment_cookie import verify_segment
from origin.core.seed import SeedReport
from origin.core.store import Store
from origin.settings import Settings
from origin.web.app import create_app
from tests.origin.experiments.support import VIEWER, origin_settings

EDGE_TOKEN = "edge-config-token-0123456789"
INTERNAL = {"margin", "popularity", "stock", "locations", "stock_version", "price_version"}


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://origin.test") as c:
            yield c


@pytest.fixture
async def prod_client(
    redis_url: str, seeded_origin_store: tuple[Store, SeedReport]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = origin_settings(redis_url, env="prod", edge_config_token=EDGE_TOKEN)
    async with client_for(settings) as c:
        yield c


async def test_anonymous_product_reads_get_only_shopper_fields(
    prod_client: httpx.AsyncClient,
) -> None:
    anonymous = (await prod_client.get("/v1/products/SKU-00007")).json()
    viewer = (await prod_client.get("/v1/products/SKU-00007", headers=VIEWER)).json()

    assert set(anonymous) == {"sku", "card"}
    assert not INTERNAL & set(anonymous["card"])
    assert set(viewer) >= INTERNAL
    assert viewer["card"] == anonymous["card"]


async def test_the_edge_config_needs_the_edge_token_or_an_admin_token(
    prod_client: httpx.AsyncClient,
) -> None:
    anonymous = await prod_client.get("/v1/edge-config")
    wrong = await prod_client.get("/v1/edge-config", headers={"Authorization": "Bearer nope"})
    odd = await prod_client.get(
        "/v1/edge-config", headers={b"Authorization": "Bearer \xc3\xa9".encode("latin-1")}
    )
    edge = await prod_client.get(
        "/v1/edge-config", headers={"Authorization": f"Bearer {EDGE_TOKEN}"}
    )
    viewer = await prod_client.get("/v1/edge-config", headers=VIEWER)

    assert [r.status_code for r in (anonymous, wrong, odd)] == [401, 401, 401]
    assert (edge.status_code, viewer.status_code) == (200, 200)
    assert edge.headers["cache-control"].startswith("private")


async def test_outside_dev_an_edge_config_without_a_token_is_admin_only(
    redis_url: str, seeded_origin_store: tuple[Store, SeedReport]
) -> None:
    async with client_for(origin_settings(redis_url, env="staging")) as c:
        assert (await c.get("/v1/edge-config")).status_code == 401
        assert (await c.get("/v1/edge-config", headers=VIEWER)).status_code == 200


async def test_the_demo_storefront_exists_only_in_dev(
    redis_url: str, seeded_origin_store: tuple[Store, SeedReport]
) -> None:
    settings = origin_settings(redis_url)
    async with client_for(settings) as dev:
        page = await dev.get("/?persona=tech-enthusiasts")
    async with client_for(replace(settings, env="prod")) as prod:
        refused = await prod.get("/?persona=tech-enthusiasts")

    assert page.status_code == 200
    assert "se_seg" in page.headers["set-cookie"]
    assert refused.status_code == 404
    assert "set-cookie" not in refused.headers


async def test_the_demo_segment_cookie_is_secure_and_bound_to_the_visitor(
    redis_url: str, seeded_origin_store: tuple[Store, SeedReport]
) -> None:
    settings = origin_settings(redis_url)
    visitor = "0123456789abcdef0123456789abcdef"
    async with client_for(settings) as dev:
        known = await dev.get("/?persona=tech-enthusiasts", headers={"cookie": f"se_vid={visitor}"})
        fresh = await dev.get("/?persona=tech-enthusiasts")

    cookie = known.headers["set-cookie"]
    value = cookie.split(";")[0].removeprefix("se_seg=")
    assert "Secure" in cookie
    assert "HttpOnly" in cookie
    assert verify_segment(value, time.time(), settings.segment_secret, visitor) == (
        "tech-enthusiasts"
    )
    assert verify_segment(value, time.time(), settings.segment_secret, "f" * 32) is None
    issued = {c.split("=")[0] for c in fresh.headers.get_list("set-cookie")}
    assert issued == {"se_vid", "se_seg"}
