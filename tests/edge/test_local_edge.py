"""The local edge (`create_edge_app`) in front of a real origin served by uvicorn.

The origin runs on a free loopback port (`tests.support.origin_server.OriginServer`) over the
suite's Redis seeded with a small catalog; its request log counts what reached it. The edge
app runs in-process (httpx.ASGITransport) with its lifespan; its cache entries are aged through
the edge's own store (`get` / `put`), so no test sleeps through a max-age.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from edge.adapters.local_server import LocalEdge, create_edge_app
from edge.config import EdgeConfig
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from fragments.tags import sku_tag
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect

SECRET = "local-edge-secret-0123456789"
HERO = FragmentKey("home-hero", "everyone")
SLOT_URL = "/se/slot/home-hero"
VISITOR = "0123456789abcdef0123456789abcdef"
RETURNING = {"cookie": f"se_vid={VISITOR}"}


@pytest.fixture(scope="module")
async def seeded(redis_url: str) -> None:
    """The suite's Redis, emptied and seeded once for this module."""
    client = connect(redis_url)
    try:
        await client.flushall()
        await seed_demo(Store(client, 5.0), load_slots(), 42, 200)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def origin(redis_url: str, seeded: None) -> Iterator[OriginServer]:
    settings = Settings(  # the secret is shared with the edge
        redis_url=redis_url, segment_secret=SECRET, redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS
    )
    with OriginServer.for_origin(settings) as server:
        yield server


@pytest.fixture
async def edge_app(origin: OriginServer) -> AsyncIterator[Starlette]:
    """A fresh edge (empty cache) in front of the running origin; the origin log cleared."""
    if not origin.running:
        origin.start()
    origin.log.clear()
    app = create_edge_app(EdgeConfig.from_slots(load_slots(), SECRET), origin.url)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def edge(edge_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=edge_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
        yield client


def local_edge(app: Starlette) -> LocalEdge:
    state: LocalEdge = app.state.edge
    return state


def age_entry(app: Starlette, key: FragmentKey, seconds: float) -> None:
    """Make the cached entry of `key` `seconds` older."""
    store = local_edge(app).cache
    entry = store.get(key.cache_key)
    assert entry is not None, f"{key.cache_key} is not cached"
    store.put(replace(entry, stored_at=entry.stored_at - seconds))


def bundle_fetches(origin: OriginServer, key: FragmentKey = HERO) -> int:
    return origin.log.count(key.bundle_path())


def skus(response: httpx.Response) -> list[str]:
    return re.findall(r'data-se-sku="([^"]+)"', response.text)


async def test_miss_then_hit(edge: httpx.AsyncClient, origin: OriginServer) -> None:
    first = await edge.get(SLOT_URL)
    second = await edge.get(SLOT_URL, headers=RETURNING)

    assert first.status_code == second.status_code == 200
    assert first.headers["x-shelfedge-cache"] == "MISS"
    assert second.headers["x-shelfedge-cache"] == "HIT"
    assert bundle_fetches(origin) == 1
    assert len(skus(first)) == 12
    assert skus(first) == skus(second)
    assert first.headers["cache-control"] == "private, no-store"
    assert first.headers["set-cookie"].startswith("se_vid=")
    assert "set-cookie" not in second.headers
    assert first.headers["server-timing"].startswith("edge;dur=")


async def test_stale_serves_at_once_and_revalidates_once_in_the_background(
    edge_app: Starlette, edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    await edge.get(SLOT_URL, headers=RETURNING)
    age_entry(edge_app, HERO, 61)
    origin.log.clear()

    responses = await asyncio.gather(*(edge.get(SLOT_URL, headers=RETURNING) for _ in range(5)))
    await local_edge(edge_app).drain()

    assert [r.headers["x-shelfedge-cache"] for r in responses] == ["STALE"] * 5
    fetches = [r for r in origin.log.requests if r.path == "/v1/bundles/home-hero"]
    assert len(fetches) == 1
    assert fetches[0].conditional
    assert fetches[0].status == 304
    after = await edge.get(SLOT_URL, headers=RETURNING)
    assert after.headers["x-shelfedge-cache"] == "HIT"
    metrics = (await edge.get("/se/metrics")).text
    assert 'shelfedge_edge_revalidations_total{outcome="not-modified"} 1.0' in metrics
    assert 'shelfedge_edge_requests_total{cache="STALE"} 5.0' in metrics


async def test_expired_entry_is_revalidated_in_line(
    edge_app: Starlette, edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    await edge.get(SLOT_URL, headers=RETURNING)
    age_entry(edge_app, HERO, 60 + 300)

    response = await edge.get(SLOT_URL, headers=RETURNING)

    assert response.headers["x-shelfedge-cache"] == "REVALIDATED"
    assert bundle_fetches(origin) == 2


async def test_stale_if_error_with_the_origin_stopped_then_safe_default(
    edge_app: Starlette, edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    fresh = await edge.get(SLOT_URL, headers=RETURNING)
    age_entry(edge_app, HERO, 60 + 300 + 10)  # expired, well within stale-if-error (1 day)
    origin.stop()
    try:
        stale = await edge.get(SLOT_URL, headers=RETURNING)
        age_entry(edge_app, HERO, 86_400)  # now beyond stale-if-error
        fallback = await edge.get(SLOT_URL, headers=RETURNING)
        cold = await edge.get("/se/slot/pdp-cross-sell", headers=RETURNING)
    finally:
        origin.start()

    assert (stale.status_code, stale.headers["x-shelfedge-cache"]) == (200, "STALE")
    assert skus(stale) == skus(fresh)
    assert (fallback.status_code, fallback.headers["x-shelfedge-cache"]) == (200, "FALLBACK")
    assert fallback.text == load_slots().slots["home-hero"].fallback_html
    assert (cold.status_code, cold.headers["x-shelfedge-cache"], cold.text) == (
        200, "FALLBACK", "",
    )  # fmt: skip


async def test_purge_by_tag_then_a_fresh_fetch(
    edge_app: Starlette, edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    first = await edge.get(SLOT_URL, headers=RETURNING)
    await edge.get("/se/slot/pdp-cross-sell", headers=RETURNING)
    shown = skus(first)[0]

    purged = await edge.post("/se/purge", json={"tags": [sku_tag(shown), "sku:NOT-CACHED"]})
    again = await edge.get(SLOT_URL, headers=RETURNING)

    assert purged.status_code == 200
    assert purged.json()["purged"] >= 1
    assert local_edge(edge_app).cache.get(HERO.cache_key) is not None  # refilled
    assert again.headers["x-shelfedge-cache"] == "MISS"
    assert bundle_fetches(origin) == 2


async def test_soft_purge_serves_stale_while_it_revalidates(
    edge_app: Starlette, edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    first = await edge.get(SLOT_URL, headers=RETURNING)
    shown = skus(first)[0]

    marked = await edge.post("/se/purge", json={"tags": [sku_tag(shown)], "soft": True})
    stale = await edge.get(SLOT_URL, headers=RETURNING)
    for _ in range(100):  # the revalidation runs in the background
        if bundle_fetches(origin) == 2:
            break
        await asyncio.sleep(0.02)
    fresh = await edge.get(SLOT_URL, headers=RETURNING)

    assert (marked.status_code, marked.json()["purged"]) == (200, 1)
    assert stale.headers["x-shelfedge-cache"] == "STALE", "kept and served, not evicted"
    assert skus(stale) == skus(first)
    assert bundle_fetches(origin) == 2, "one revalidation"
    assert fresh.headers["x-shelfedge-cache"] == "HIT"


async def test_purge_rejects_a_soft_flag_that_is_not_a_boolean(edge: httpx.AsyncClient) -> None:
    response = await edge.post("/se/purge", json={"tags": ["x"], "soft": "yes"})
    assert response.status_code == 400
    assert "soft" in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"tag": ["x"]}', b'{"tags": "x"}', b'{"tags": [1]}', b"[]"],
)
async def test_purge_rejects_malformed_bodies(edge: httpx.AsyncClient, body: bytes) -> None:
    response = await edge.post("/se/purge", content=body)
    assert response.status_code == 400
    assert "tags" in response.json()["error"]


async def test_everything_else_is_proxied_to_the_origin(
    edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    page = await edge.get("/?persona=tech-enthusiasts", headers=RETURNING)
    product = await edge.get("/v1/products/SKU-00001")
    missing = await edge.get("/v1/bundles/nope?segment=everyone")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["set-cookie"].startswith("se_seg=v2.0.tech-enthusiasts.")
    assert product.json()["sku"] == "SKU-00001"
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert origin.log.count("/") == 1


async def test_unknown_slot_is_404_without_an_origin_fetch(
    edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    response = await edge.get("/se/slot/no-such-slot")
    assert response.status_code == 404
    assert not [r for r in origin.log.requests if r.path.startswith("/v1/")]


async def test_the_signed_segment_cookie_from_the_origin_selects_the_segment(
    edge: httpx.AsyncClient, origin: OriginServer
) -> None:
    page = await edge.get("/?persona=tech-enthusiasts", headers=RETURNING)
    cookie = page.headers["set-cookie"].split(";")[0]

    response = await edge.get(SLOT_URL, headers={"cookie": f"{cookie}; se_vid={VISITOR}"})

    assert response.status_code == 200
    assert 'data-segment="tech-enthusiasts"' in response.text
    assert origin.log.count(FragmentKey("home-hero", "tech-enthusiasts").bundle_path()) == 1


def _config_last_success(metrics_text: str) -> float:
    name = "shelfedge_edge_experiment_config_last_success_timestamp_seconds"
    match = re.search(rf"^{name} (\S+)$", metrics_text, re.MULTILINE)
    assert match is not None, f"{name} missing from /se/metrics"
    return float(match.group(1))


async def test_experiment_config_staleness_is_exported_and_kept_through_an_origin_outage(
    origin: OriginServer,
) -> None:
    if not origin.running:
        origin.start()
    app = create_edge_app(
        EdgeConfig.from_slots(load_slots(), SECRET), origin.url, follow_experiments=True
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://edge.test") as client:
            before = time.time()
            edge: LocalEdge = app.state.edge
            assert await edge.configs.refresh() in ("updated", "not-modified")
            fetched = _config_last_success((await client.get("/se/metrics")).text)
            assert before <= fetched <= time.time()
            origin.stop()
            try:
                assert (await edge.configs.refresh()).startswith("failed")
                kept = _config_last_success((await client.get("/se/metrics")).text)
            finally:
                origin.start()
            assert kept == fetched, "a failed refresh must not look like a fresh configuration"
