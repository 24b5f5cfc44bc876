"""Page composition in the real Python Worker under workerd (`wrangler dev --local`).

The upstream is `tests.support.page_upstream.PageUpstream` (scripted pages in front of the real
origin app over the suite's Redis seeded with the demo catalog), served by uvicorn on loopback;
the Worker is assembled by `prepare_worker` with a slots.toml whose composition budgets suit
the tests (cart-upsell 3 s, home-hero 300 ms; the policy travels in the bundles).

Proved: three placeholders (two ``<se-slot>``, one ESI include) come back with the same HTML
``/se/slot`` gives this shopper and every other byte unchanged; the head arrives before the
slowest slot is decided (time to first byte against time to last byte); a slow origin yields
the client-fill fallback within the slot's budget and a failing one the placeholders' fallbacks;
non-HTML and malformed pages pass through byte for byte. Last, the Workers HTMLRewriter variant
(``COMPOSE_REWRITER=htmlrewriter``) is timed against the Python rewriter on the same 60 KB page
(docs/edge.md reports the figures).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fragments.ids import FragmentKey
from fragments.slots import load_slots
from fragments.tags import bundle_tag
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from origin.web.app import create_app
from tests.edge.test_local_compose import (
    HEAD,
    PARTS,
    PASS_THROUGH,
    SLOTS,
    THREE,
    bundle,
    split_composed,
    timing_lines,
)
from tests.support.origin_server import OriginServer
from tests.support.page_upstream import Page, PageUpstream
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect
from tests.support.workerd import DevSettings, WranglerDev, prepare_worker

SECRET = "workerd-compose-secret-0123456789"
PURGE_TOKEN = "compose-purge-token"
VISITOR = "0123456789abcdef0123456789abcdef"
RETURNING = {"cookie": f"se_vid={VISITOR}"}
HERO_BUDGET_MS = 300
SLOW_BUDGET_MS = 3000
CART_SLOT = b'<se-slot name="cart-upsell"></se-slot>'
COLD_ORIGIN_DELAY = 0.1
"""Seconds the origin takes per bundle in the cold-cache comparison."""


def budgeted_slots_toml() -> str:
    """fragments/slots.toml with the test's composition budgets."""
    text = (Path(__file__).parents[2] / "fragments" / "slots.toml").read_text()
    text = text.replace(
        "[slots.home-hero.policy]",
        f"compose_budget_ms = {HERO_BUDGET_MS}\n[slots.home-hero.policy]",
    )
    return text.replace(
        "[slots.cart-upsell.policy]",
        f"compose_budget_ms = {SLOW_BUDGET_MS}\n[slots.cart-upsell.policy]",
    )


def big_page(target: int = 60_000) -> bytes:
    """A ~60 KB product-listing page with three placeholders."""
    row = b'<li class="row"><a href="/products/SKU-%05d">Product %05d</a> <span>12.99</span></li>\n'
    rows = b"".join(row % (i, i) for i in range(target // len(row % (0, 0))))
    third = len(rows) // 3
    return (
        HEAD
        + rows[:third]
        + PARTS[1]
        + rows[third : 2 * third]
        + PARTS[3]
        + rows[2 * third :]
        + PARTS[5]
        + PARTS[6]
    )


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
    app = PageUpstream(create_app(settings, load_slots()))
    app.pages["three"] = Page.of(THREE)
    big = big_page()
    app.pages["big"] = Page.of(big)
    app.pages["big-slots"] = Page.of(big.replace(PARTS[5], CART_SLOT))
    app.pages["big-text"] = Page.of(big, "text/plain")  # the same bytes, passed through
    app.pages.update(PASS_THROUGH)
    return app


@pytest.fixture(scope="module")
def upstream(upstream_app: PageUpstream) -> Iterator[OriginServer]:
    with OriginServer(upstream_app) as server:
        yield server


@pytest.fixture(scope="module")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = prepare_worker(tmp_path_factory.mktemp("workerd-compose") / "worker")
    (built / "src" / "fragments" / "slots.toml").write_text(budgeted_slots_toml())
    return built


def start_worker(
    worker_dir: Path, upstream: OriginServer, state: Path, **extra: str
) -> WranglerDev:
    settings = DevSettings(
        worker_dir=worker_dir,
        state_dir=state,
        variables={
            "ORIGIN_URL": upstream.url,
            "PURGE_TOKEN": PURGE_TOKEN,
            "SEGMENT_SECRET": SECRET,
            "SHELFEDGE_ENV": "dev",  # a local run: the development event keys are accepted
            "PASS_THROUGH": "/,/static/,/healthz,/pages/",  # the test upstream's pages
            **extra,
        },
    )
    dev = WranglerDev(settings)
    dev.start()
    with httpx.Client(base_url=dev.base_url, timeout=30.0, trust_env=False) as http:
        warm = http.get("/healthz")
    assert warm.status_code == 200, f"pass-through /healthz: {warm.status_code} {warm.text}"
    return dev


@pytest.fixture(scope="module")
def edge(
    worker_dir: Path, upstream: OriginServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WranglerDev]:
    dev = start_worker(worker_dir, upstream, tmp_path_factory.mktemp("wrangler-compose"))
    try:
        yield dev
    finally:
        dev.stop()


@pytest.fixture
async def client(edge: WranglerDev) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=20.0, trust_env=False) as http:
        yield http


@pytest.fixture
def upstream_reset(upstream: OriginServer, upstream_app: PageUpstream) -> Iterator[OriginServer]:
    upstream.log.clear_delays()
    upstream.log.clear()
    upstream_app.failing.clear()
    yield upstream
    upstream.log.clear_delays()
    upstream_app.failing.clear()


async def purge_all(client: httpx.AsyncClient, base: str = "") -> None:
    tags = [bundle_tag(FragmentKey(slot, "everyone")) for slot in SLOTS]
    answer = await client.post(
        base + "/se/purge",
        json={"tags": tags},
        headers={"authorization": f"Bearer {PURGE_TOKEN}"},
    )
    assert answer.status_code == 200, answer.text


async def test_three_placeholders_come_back_filled(
    client: httpx.AsyncClient, upstream_reset: OriginServer
) -> None:
    """Slots cached first (by ``/se/slot``), so that a loaded machine's slow first origin
    fetches cannot miss the 300 ms budget here; misses are composed in the next test."""
    await purge_all(client)
    direct = {}
    for slot in SLOTS:
        answer = await client.get(f"/se/slot/{slot}?page=/pages/three", headers=RETURNING)
        assert answer.headers["x-shelfedge-cache"] == "MISS"
        direct[slot] = answer.content
    page = await client.get("/pages/three", headers=RETURNING)

    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert page.headers["server-timing"].startswith("shell;dur=")
    fills = split_composed(page.content, PARTS)
    for slot, fill in zip(SLOTS, fills, strict=True):
        assert fill == direct[slot]
        assert f'data-se-slot="{slot}"'.encode() in fill
    assert [line.split()[2] for line in timing_lines(page.content)] == ["HIT"] * 3


async def test_first_bytes_arrive_before_the_slowest_slot(
    client: httpx.AsyncClient, upstream_reset: OriginServer
) -> None:
    await purge_all(client)
    await client.get("/se/slot/home-hero", headers=RETURNING)  # warm: only the slow one misses
    await client.get("/se/slot/pdp-cross-sell", headers=RETURNING)
    upstream_reset.log.set_delay(bundle("cart-upsell"), 1.0)

    started = time.perf_counter()
    first_byte = 0.0
    body = b""
    headers = {**RETURNING, "accept-encoding": "identity"}
    async with client.stream("GET", "/pages/three", headers=headers) as response:
        async for chunk in response.aiter_raw():
            if not body:
                first_byte = time.perf_counter() - started
            body += chunk
    last_byte = time.perf_counter() - started

    assert body.startswith(HEAD)
    assert last_byte >= 1.0, f"last byte after {last_byte:.3f} s"
    assert first_byte < last_byte - 0.6, f"first byte {first_byte:.3f} s, last {last_byte:.3f} s"
    fills = split_composed(body, PARTS)
    assert b'data-se-slot="cart-upsell"' in fills[2]
    assert [line.split()[2] for line in timing_lines(body)] == ["HIT", "HIT", "MISS"]


async def test_a_slow_origin_yields_the_fallback_within_the_budget(
    client: httpx.AsyncClient, upstream_reset: OriginServer
) -> None:
    await purge_all(client)
    upstream_reset.log.set_delay(bundle("home-hero"), 1.2)

    started = time.perf_counter()
    page = await client.get("/pages/three", headers=RETURNING)
    elapsed = time.perf_counter() - started

    assert elapsed < HERO_BUDGET_MS / 1000 + 0.7, f"page took {elapsed:.3f} s"
    fills = split_composed(page.content, PARTS)
    assert fills[0] == (b'<se-slot name="home-hero" data-se-fill=""><p>hero fallback</p></se-slot>')
    assert timing_lines(page.content)[0].split()[2] == "TIMEOUT"


async def test_a_failing_origin_yields_the_placeholders_fallback(
    client: httpx.AsyncClient, upstream_reset: OriginServer, upstream_app: PageUpstream
) -> None:
    await purge_all(client)
    upstream_app.failing.add("/v1/bundles/")

    page = await client.get("/pages/three", headers=RETURNING)

    fills = split_composed(page.content, PARTS)
    assert fills == [b"<p>hero fallback</p>", b"<p>cross fallback</p>", b""]
    assert [line.split()[2] for line in timing_lines(page.content)] == ["FALLBACK"] * 3


@pytest.mark.parametrize("name", sorted(PASS_THROUGH))
async def test_other_pages_pass_through_byte_for_byte(
    client: httpx.AsyncClient, upstream_reset: OriginServer, name: str
) -> None:
    page = await client.get(f"/pages/{name}", headers=RETURNING)
    assert page.status_code == 200
    assert page.content == PASS_THROUGH[name].body


async def page_times(
    targets: dict[str, tuple[str, str]], rounds: int, *, cold: bool = False
) -> dict[str, list[float]]:
    """Wall seconds per GET of each target (name -> (base URL, path)), taken in turns so that
    load on the machine weighs on every target alike; three warm-up rounds are dropped.
    ``cold``: the slots' bundles are purged from the target's cache before each GET."""
    times: dict[str, list[float]] = {name: [] for name in targets}
    async with httpx.AsyncClient(timeout=20.0, trust_env=False) as http:
        for i in range(rounds + 3):
            for name, (base, path) in targets.items():
                if cold:
                    await purge_all(http, base)
                started = time.perf_counter()
                answer = await http.get(base + path, headers=RETURNING)
                assert answer.status_code == 200
                if i >= 3:
                    times[name].append(time.perf_counter() - started)
    return times


async def test_htmlrewriter_against_the_python_rewriter(
    edge: WranglerDev,
    worker_dir: Path,
    upstream_reset: OriginServer,
    tmp_path_factory: pytest.TempPathFactory,
    record_property: Callable[[str, object], None],
) -> None:
    """Both fill the same three ``<se-slot>`` placeholders of a 60 KB page; per-page times
    (p50, in turns, against the pass-through of the same page; then with the three bundles
    purged before each page and the origin taking `COLD_ORIGIN_DELAY` per bundle) are recorded,
    not asserted."""
    rewriter = start_worker(
        worker_dir,
        upstream_reset,
        tmp_path_factory.mktemp("wrangler-htmlrewriter"),
        COMPOSE_REWRITER="htmlrewriter",
    )
    try:
        # Each worker's first page fetches the bundles from the origin and may, on a loaded
        # machine, give a slot its fallback when a fetch outlasts the slot's budget (a
        # TIMEOUT: right, but not what this test compares); the compared pages are cache hits.
        for base in (edge.base_url, rewriter.base_url):
            await _get(base, "/pages/big-slots")
        python_page = (await _get(edge.base_url, "/pages/big-slots")).content
        lol_answer = await _get(rewriter.base_url, "/pages/big-slots")
        assert lol_answer.headers["x-shelfedge-rewriter"] == "htmlrewriter"
        for slot in SLOTS:
            assert lol_answer.content.count(f'data-se-slot="{slot}"'.encode()) >= 1
            assert python_page.count(f'data-se-slot="{slot}"'.encode()) >= 1
        assert b"<se-slot" not in lol_answer.content
        times = await page_times(
            {
                "python": (edge.base_url, "/pages/big-slots"),
                "htmlrewriter": (rewriter.base_url, "/pages/big-slots"),
                "pass-through": (edge.base_url, "/pages/big-text"),
            },
            40,
        )
        for slot in SLOTS:
            upstream_reset.log.set_delay(bundle(slot), COLD_ORIGIN_DELAY)
        cold = await page_times(
            {
                "python, 3 misses": (edge.base_url, "/pages/big-slots"),
                "htmlrewriter, 3 misses": (rewriter.base_url, "/pages/big-slots"),
            },
            10,
            cold=True,
        )
    finally:
        rewriter.stop()
    for name, samples in {**times, **cold}.items():
        p50 = statistics.median(samples) * 1000
        record_property(f"{name}_p50_ms", round(p50, 2))
        print(f"workerd 60 KB page, {name}: p50 {p50:.2f} ms over {len(samples)} pages")


async def _get(base: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=20.0, trust_env=False) as http:
        answer = await http.get(path, headers=RETURNING)
    assert answer.status_code == 200
    return answer
