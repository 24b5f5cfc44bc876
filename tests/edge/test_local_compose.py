"""Page composition through the local edge, over real HTTP (uvicorn) before a real origin.

The upstream is `tests.support.page_upstream.PageUpstream`: scripted pages in front of the real
origin app over the suite's Redis seeded with the demo catalog (bundles come from the origin).
The edge app runs under uvicorn too (`OriginServer` serves any ASGI app), so time to first
byte and time to last byte are what a browser would see.

Proved: three placeholders (two ``<se-slot>`` and one ESI include) come back filled with the
same HTML ``/se/slot`` gives this shopper, everything else byte for byte; the head arrives
before the slowest slot is decided; a slow origin yields the client-fill fallback within the
slot's budget and a failing one the placeholder's fallback; non-HTML and malformed pages, and
pages when composition is off, pass through byte for byte.
"""

from __future__ import annotations

import gzip
import itertools
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest

from edge.adapters.local_server import create_edge_app
from edge.config import EdgeConfig
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from origin.web.app import create_app
from tests.support.origin_server import OriginServer
from tests.support.page_upstream import Page, PageUpstream
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect

SECRET = "compose-edge-secret-0123456789"
VISITOR = "0123456789abcdef0123456789abcdef"
RETURNING = {"cookie": f"se_vid={VISITOR}"}
SLOW_BUDGET_MS = 3000
HEAD = b"<!doctype html><html><head><title>t</title></head><body><h1>Shop</h1>\n"
PARTS = (
    HEAD,
    b'<se-slot name="home-hero"><p>hero fallback</p></se-slot>',
    b"\n<p>between one</p>\n",
    b'<se-slot name="pdp-cross-sell" anchor="SKU-00001"><p>cross fallback</p></se-slot>',
    b"\n<p>between two</p>\n",
    b'<esi:include src="/se/slot/cart-upsell"/>',
    b"\n</body></html>\n",
)
THREE = b"".join(PARTS)
SLOTS = ("home-hero", "pdp-cross-sell", "cart-upsell")


def bundle(slot: str) -> str:
    return FragmentKey(slot, "everyone").bundle_path()


@pytest.fixture(scope="module")
async def seeded(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        await client.flushall()
        await seed_demo(Store(client, 5.0), load_slots(), 42, 200)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def upstream_app(redis_url: str, seeded: None) -> PageUpstream:
    settings = Settings(
        redis_url=redis_url, segment_secret=SECRET, redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS
    )
    return PageUpstream(create_app(settings, load_slots()))


@pytest.fixture(scope="module")
def upstream(upstream_app: PageUpstream) -> Iterator[OriginServer]:
    with OriginServer(upstream_app) as server:
        yield server


def edge_config(**budgets_ms: int) -> EdgeConfig:
    config = EdgeConfig.from_slots(load_slots(), SECRET)
    return replace(config, compose_budgets_ms={**config.compose_budgets_ms, **budgets_ms})


@pytest.fixture
def upstream_reset(upstream: OriginServer, upstream_app: PageUpstream) -> Iterator[OriginServer]:
    upstream.log.clear_delays()
    upstream.log.clear()
    upstream_app.failing.clear()
    yield upstream
    upstream.log.clear_delays()
    upstream_app.failing.clear()


def serve_edge(upstream: OriginServer, config: EdgeConfig, compose: bool = True) -> OriginServer:
    app = create_edge_app(config, upstream.url, compose_pages=compose)
    return OriginServer(app).start()


@pytest.fixture
async def edge(upstream_reset: OriginServer) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh edge (empty cache) under uvicorn; every slot gets a long budget here (a loaded
    machine's first origin fetches must not time out: budgets are tested on their own)."""
    budgets = dict.fromkeys(SLOTS, SLOW_BUDGET_MS)
    server = serve_edge(upstream_reset, edge_config(**budgets))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            yield client
    finally:
        server.stop()


def split_composed(body: bytes, parts: tuple[bytes, ...]) -> list[bytes]:
    """The three fills of a composed `PARTS` page, checking every byte around them."""
    fills = []
    rest = body
    for i in range(0, len(parts) - 1, 2):
        text = parts[i]
        assert rest.startswith(text), f"text before placeholder {i // 2} changed"
        rest = rest[len(text) :]
        following = parts[i + 2]
        end = rest.index(following) if i + 2 < len(parts) - 1 else rest.index(parts[-1])
        fills.append(rest[:end])
        rest = rest[end:]
    assert rest.startswith(parts[-1])
    assert rest[len(parts[-1]) :].startswith(b"\n<!-- shelfedge composed\n")
    return fills


def timing_lines(body: bytes) -> list[str]:
    comment = body.rsplit(b"<!-- shelfedge composed\n", 1)[1].split(b"-->")[0].decode()
    return comment.strip().splitlines()


async def test_three_placeholders_come_back_filled(
    edge: httpx.AsyncClient, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["three"] = Page.of(THREE)

    page = await edge.get("/pages/three", headers=RETURNING)

    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert page.headers["server-timing"].startswith("shell;dur=")
    assert page.headers["x-shelfedge-compose"] == "stream"
    assert "set-cookie" not in page.headers
    fills = split_composed(page.content, PARTS)
    for slot, fill in zip(SLOTS, fills, strict=True):
        direct = await edge.get(f"/se/slot/{slot}?page=/pages/three", headers=RETURNING)
        assert direct.headers["x-shelfedge-cache"] == "HIT"  # the page's decision warmed it
        assert fill == direct.content
        assert f'data-se-slot="{slot}"'.encode() in fill
    statuses = [line.split()[2] for line in timing_lines(page.content)]
    assert statuses == ["MISS", "MISS", "MISS"]
    assert [line.split()[1] for line in timing_lines(page.content)] == [
        "0-home-hero", "1-pdp-cross-sell", "2-cart-upsell",
    ]  # fmt: skip


async def test_a_new_visitor_gets_one_id_for_the_whole_page(
    edge: httpx.AsyncClient, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["three"] = Page.of(THREE)
    page = await edge.get("/pages/three")
    assert page.headers["set-cookie"].startswith("se_vid=")
    assert len(page.headers.get_list("set-cookie")) == 1


async def test_first_bytes_arrive_before_the_slowest_slot(
    edge: httpx.AsyncClient, upstream_app: PageUpstream, upstream_reset: OriginServer
) -> None:
    upstream_app.pages["three"] = Page.of(THREE)
    upstream_reset.log.set_delay(bundle("cart-upsell"), 0.8)

    started = time.perf_counter()
    first_byte = 0.0
    body = b""
    async with edge.stream("GET", "/pages/three", headers=RETURNING) as response:
        async for chunk in response.aiter_raw():
            if not body:
                first_byte = time.perf_counter() - started
                assert chunk.startswith(HEAD)
            body += chunk
    last_byte = time.perf_counter() - started

    assert first_byte < 0.4, f"first byte after {first_byte:.3f} s"
    assert last_byte >= 0.8, f"last byte after {last_byte:.3f} s"
    fills = split_composed(body, PARTS)
    assert b'data-se-slot="cart-upsell"' in fills[2]
    assert [line.split()[2] for line in timing_lines(body)] == ["MISS", "MISS", "MISS"]


async def test_a_slow_origin_yields_the_fallback_within_the_budget(
    upstream_reset: OriginServer, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["three"] = Page.of(THREE)
    upstream_reset.log.set_delay(bundle("home-hero"), 1.0)
    budget_ms = 200
    server = serve_edge(upstream_reset, edge_config(**{"home-hero": budget_ms}))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            started = time.perf_counter()
            page = await client.get("/pages/three", headers=RETURNING)
            elapsed = time.perf_counter() - started
    finally:
        server.stop()

    assert elapsed < budget_ms / 1000 + 0.5, f"page took {elapsed:.3f} s"
    fills = split_composed(page.content, PARTS)
    assert fills[0] == (b'<se-slot name="home-hero" data-se-fill=""><p>hero fallback</p></se-slot>')
    assert b'data-se-slot="pdp-cross-sell"' in fills[1]
    assert timing_lines(page.content)[0].split()[2] == "TIMEOUT"


async def test_a_failing_origin_yields_the_placeholders_fallback(
    edge: httpx.AsyncClient, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["three"] = Page.of(THREE)
    upstream_app.failing.add("/v1/bundles/")

    page = await edge.get("/pages/three", headers=RETURNING)

    fills = split_composed(page.content, PARTS)
    assert fills[:2] == [b"<p>hero fallback</p>", b"<p>cross fallback</p>"]
    assert fills[2] == b""  # the ESI include has no fallback; the slot's default is ""
    assert [line.split()[2] for line in timing_lines(page.content)] == ["FALLBACK"] * 3


async def test_an_unknown_slot_gets_its_fallback(
    edge: httpx.AsyncClient, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["unknown"] = Page.of(
        b'<p>a</p><se-slot name="no-such-slot"><b>fb</b></se-slot><p>b</p>'
    )
    page = await edge.get("/pages/unknown", headers=RETURNING)
    assert page.content.startswith(b"<p>a</p><b>fb</b><p>b</p>\n<!-- shelfedge composed\n")
    assert "UNKNOWN" in timing_lines(page.content)[0]


PASS_THROUGH = {
    "json": Page.of(b'{"html": "<se-slot name=\\"home-hero\\"></se-slot>"}', "application/json"),
    "binary": Page.of(bytes(range(256)) * 64, "application/octet-stream"),
    "text": Page.of(b'<se-slot name="home-hero">x</se-slot>', "text/plain"),
    "malformed": Page.of(b'<html><se-slot name="home-hero">never closed<<>><!-- x'),
    "garbage": Page.of(bytes(range(256)) * 16 + b"<se-slot"),
    "chunked": Page((b"<html><body>", b"<se-slo", b"t-x>no</se-slot>", b"</body>"), pause=0.01),
}


@pytest.mark.parametrize("name", sorted(PASS_THROUGH))
async def test_other_pages_pass_through_byte_for_byte(
    edge: httpx.AsyncClient, upstream_app: PageUpstream, name: str
) -> None:
    upstream_app.pages[name] = PASS_THROUGH[name]
    page = await edge.get(f"/pages/{name}", headers=RETURNING)
    assert page.status_code == 200
    assert page.content == PASS_THROUGH[name].body


async def test_composition_off_passes_placeholders_through(
    upstream_reset: OriginServer, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["three"] = Page.of(THREE)
    server = serve_edge(upstream_reset, edge_config(), compose=False)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            page = await client.get("/pages/three", headers=RETURNING)
    finally:
        server.stop()
    assert page.content == THREE
    assert "x-shelfedge-compose" not in page.headers


async def test_a_streamed_upstream_page_is_composed_across_chunks(
    edge: httpx.AsyncClient, upstream_app: PageUpstream
) -> None:
    cuts = [0, 10, 70, 71, 200, 260, len(THREE)]
    chunks = tuple(THREE[a:b] for a, b in itertools.pairwise(cuts))
    upstream_app.pages["chunked-three"] = Page(chunks, pause=0.02)
    page = await edge.get("/pages/chunked-three", headers=RETURNING)
    fills = split_composed(page.content, PARTS)
    assert all(re.search(rb'data-se-slot="[a-z-]+"', fill) for fill in fills)


async def test_a_gzipped_page_is_composed(
    edge: httpx.AsyncClient, upstream_app: PageUpstream
) -> None:
    upstream_app.pages["gzipped"] = Page(
        (gzip.compress(THREE),), headers=(("content-encoding", "gzip"),)
    )
    page = await edge.get("/pages/gzipped", headers=RETURNING)
    assert "content-encoding" not in page.headers
    fills = split_composed(page.content, PARTS)
    assert all(b"data-se-slot=" in fill for fill in fills)
