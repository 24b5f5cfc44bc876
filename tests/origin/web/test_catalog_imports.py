"""``POST /v1/catalog/imports`` on the real app under uvicorn and the suite's Redis: the ingest
role, the report, an aborted import's rejections, hostile XML, and what shoppers then see."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from redis.asyncio import Redis

from origin.ingest import catalog_import, judging
from origin.settings import Settings
from tests.origin.ingest.support import tsv
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS

INGEST_TOKEN = "ingest-token-0123456789"
EDITOR_TOKEN = "editor-token-0123456789"
VIEWER_TOKEN = "viewer-token-0123456789"
INGEST = {"Authorization": f"Bearer {INGEST_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
EDITOR = {"Authorization": f"Bearer {EDITOR_TOKEN}"}


@pytest.fixture(scope="module")
def origin(redis_url: str) -> Iterator[OriginServer]:
    settings = Settings(
        redis_url=redis_url,
        redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS,
        admin_tokens={INGEST_TOKEN: "ingest", EDITOR_TOKEN: "editor", VIEWER_TOKEN: "viewer"},
        admin_token_names={INGEST_TOKEN: "feedbot", EDITOR_TOKEN: "alice", VIEWER_TOKEN: "vic"},
        import_workers=1,
    )
    with OriginServer.for_origin(settings) as server:
        yield server


@pytest.fixture
async def api(origin: OriginServer, redis_client: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=origin.url, timeout=60.0) as client:
        yield client


async def test_an_ingest_token_imports_a_feed_and_shoppers_see_it(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/catalog/imports",
        content=tsv(120),
        headers={**INGEST, "Content-Type": "text/tab-separated-values"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["read"], report["created"], report["applied"]) == (120, 120, True)
    assert report["source"] == "POST by feedbot"
    product = (await api.get("/v1/products/FEED-000007")).json()
    assert product["card"]["url"] == "https://shop.example/products/FEED-000007"
    assert product["card"]["image_url"] == "https://cdn.shop.example/img/FEED-000007.jpg"
    fragment = await api.get("/v1/fragments/home-hero", params={"segment": "everyone"})
    assert fragment.status_code == 200
    assert 'src="https://cdn.shop.example/img/FEED-' in fragment.text
    last = await api.get("/v1/catalog/imports/last", headers=INGEST)
    assert last.json()["created"] == 120
    again = await api.post("/v1/catalog/imports", content=tsv(120), headers=EDITOR)
    assert again.json()["unchanged"] == 120
    assert again.json()["purges_enqueued"] == 0


async def test_roles(api: httpx.AsyncClient) -> None:
    anonymous = await api.post("/v1/catalog/imports", content=tsv(3))
    assert anonymous.status_code == 401
    assert "ingest or editor" in anonymous.json()["detail"]
    viewer = await api.post("/v1/catalog/imports", content=tsv(3), headers=VIEWER)
    assert viewer.status_code == 403
    ingest_reads_experiments = await api.get("/v1/experiments", headers=INGEST)
    assert ingest_reads_experiments.status_code == 403


async def test_an_aborted_import_answers_422_with_its_rejections(api: httpx.AsyncClient) -> None:
    feed = (
        tsv(20) + "BAD-1\tNo price\t\thttps://x.example/p\thttps://x.example/i.jpg\t\t\tin_stock\n"
    )
    response = await api.post("/v1/catalog/imports", content=feed, headers=INGEST)
    assert response.status_code == 422
    body = response.json()
    assert body["title"] == "Import aborted"
    (rejection,) = body["report"]["rejections"]
    assert (rejection["position"], rejection["field"], rejection["sku"]) == (22, "price", "BAD-1")
    assert (await api.get("/v1/products/FEED-000001")).status_code == 404


async def test_hostile_xml_and_bad_parameters_are_422(api: httpx.AsyncClient) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<rss><channel><item><title>&x;</title></item></channel></rss>"
    )
    hostile = await api.post("/v1/catalog/imports", content=xxe, headers=INGEST)
    assert hostile.status_code == 422
    assert "DTDForbidden" in hostile.json()["detail"]
    bad = await api.post(
        "/v1/catalog/imports",
        params={"mode": "half", "reject_threshold": "2"},
        content=b"",
        headers=INGEST,
    )
    assert bad.status_code == 422
    assert {p["name"] for p in bad.json()["invalid_params"]} == {"mode", "reject_threshold"}


async def test_a_gzip_feed_body_imports_as_the_feed_inside(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/v1/catalog/imports",
        content=gzip.compress(tsv(40).encode()),
        headers={**INGEST, "Content-Type": "application/gzip"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["read"], response.json()["created"]) == (40, 40)
    truncated = await api.post(
        "/v1/catalog/imports",
        content=gzip.compress(tsv(40).encode())[:200],
        headers={**INGEST, "Content-Type": "application/gzip"},
    )
    assert truncated.status_code == 422, truncated.text
    assert "gzip feed is corrupt or truncated" in truncated.text


async def test_a_large_feed_is_validated_partly_in_a_worker_process(
    api: httpx.AsyncClient,
) -> None:
    """SHELFEDGE_IMPORT_WORKERS reaches the web service: a feed of two large staging chunks
    has one of them validated in a worker process the origin spawned."""
    count = catalog_import.STAGE_CHUNK + judging.POOL_MIN_ITEMS
    response = await api.post(
        "/v1/catalog/imports",
        content=tsv(count),
        headers={**INGEST, "Content-Type": "text/tab-separated-values"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["read"], report["created"], report["rejected"]) == (count, count, 0)
    assert report["judged_in_workers"] in (judging.POOL_MIN_ITEMS, catalog_import.STAGE_CHUNK)
