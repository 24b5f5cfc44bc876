"""The edge as a real Python Worker under workerd (`wrangler dev --local`) before a real origin.

One origin per module (`OriginServer`, uvicorn on a loopback port, over the suite's Redis seeded
with a 200-SKU demo catalog) and one Worker per module, assembled by `prepare_worker` and served
by `WranglerDev` with ``ORIGIN_URL`` pointing at that origin. The origin's slot catalog is parsed
from `SLOTS_TOML`, whose home-hero policy is short (max-age 2 s, stale-while-revalidate 4 s,
stale-if-error 60 s) so the cache's time windows pass in seconds. The Worker reads its own copy
of `fragments/slots.toml` only for fallbacks and locales; the policy travels inside each bundle.

Proved with httpx against the Worker and the origin's request log: MISS then HIT with one origin
fetch; STALE with exactly one background revalidation however many requests arrive in the
stale window; stale-if-error and the slot's safe default while the origin is down; a slow
origin cut off at the Worker's origin timeout; purge by bundle tag; the /se surface's bounded
bodies; garbage and oversized cookies; no workerd left once the Worker is stopped.

The tests run in file order and share the Worker's cache: each one first purges the bundle it
works on. They must never contact anything but loopback, nor touch a Redis, origin or Worker
the suite did not start (the module empties and seeds the suite's own Redis).
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from edge.assemble import assemble
from edge.config import EdgeConfig
from edge.context import ShopperContext
from edge.rerank import rerank
from edge.surface import MAX_BEACON_BODY, MAX_PURGE_BODY
from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import SlotCatalog, load_slots, parse_slots
from fragments.tags import bundle_tag
from origin.core.envelope import Envelope, open_envelope
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect
from tests.support.workerd import LOOPBACK, DevSettings, WranglerDev, prepare_worker

MAX_AGE = 2
STALE_WHILE_REVALIDATE = 4
STALE_IF_ERROR = 60
SLOTS_TOML = f"""
locales = ["en-US", "de-DE"]

[slots.home-hero]
title = "Picked for you"
wrapper = "grid_wrapper.html.j2"
card = "card.html.j2"
candidates = 24
shown = 6
max_per_category = 2
fallback_html = ""
[slots.home-hero.policy]
max_age = {MAX_AGE}
stale_while_revalidate = {STALE_WHILE_REVALIDATE}
stale_if_error = {STALE_IF_ERROR}
"""
"""The origin's slots: home-hero only, with a short policy (the Worker knows all slots)."""

SLOT = "home-hero"
SEGMENT = "everyone"
KEY = FragmentKey(SLOT, SEGMENT, "control", "en-US")
NEVER_CACHED = FragmentKey(SLOT, SEGMENT, "control", "de-DE")
"""Requested only while the origin is down, so the Worker never holds it."""
BUNDLE_PATH = f"/v1/bundles/{SLOT}"
N_SKUS = 200
WORKER_SLOTS = load_slots()
"""What the Worker bundles and reads: fragments/slots.toml (its slots, fallbacks, locales)."""
ORIGIN_TIMEOUT = EdgeConfig.from_slots(WORKER_SLOTS, "unused-secret-of-16+").origin_timeout
"""Seconds the Worker waits for the origin before it treats a fetch as failed."""
ORIGIN_DELAY = ORIGIN_TIMEOUT * 2 / 3
"""Seconds the origin holds bundle requests in the stale-window test (below the timeout), so
concurrent stale requests all arrive while the one revalidation is in flight."""
PURGE_TOKEN = "h9-test-purge-token"
VISITOR_ID = re.compile(r"se_vid=([0-9a-f]{32})(;|$)")
SERVER_TIMING = re.compile(r"edge;dur=\d+\.\d{3}")
CACHE_STATUSES = {"HIT", "STALE", "MISS", "REVALIDATED", "FALLBACK"}


@pytest.fixture(scope="module")
def slots() -> SlotCatalog:
    return parse_slots(SLOTS_TOML, "test_workerd.SLOTS_TOML")


@pytest.fixture(scope="module")
async def store(redis_url: str, slots: SlotCatalog) -> AsyncIterator[Store]:
    """The suite's Redis, emptied and seeded with a small demo catalog."""
    client = connect(redis_url)
    try:
        await client.flushall()
        store = Store(client, 5.0)
        report = await seed_demo(store, slots, seed=42, n_skus=N_SKUS)
        assert report.bundles > 0
        yield store
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def origin(redis_url: str, store: Store, slots: SlotCatalog) -> Iterator[OriginServer]:
    with OriginServer.for_origin(
        Settings(redis_url=redis_url, redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS), slots
    ) as server:
        yield server


@pytest.fixture(scope="module")
def edge(origin: OriginServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WranglerDev]:
    """The Worker under wrangler dev, warmed up by one pass-through request to the origin.

    Teardown checks that no process of wrangler's group (workerd included) survives.
    """
    worker_dir = prepare_worker(tmp_path_factory.mktemp("workerd") / "worker")
    settings = DevSettings(
        worker_dir=worker_dir,
        state_dir=tmp_path_factory.mktemp("wrangler-state"),
        variables={
            "ORIGIN_URL": origin.url,
            "PURGE_TOKEN": PURGE_TOKEN,
            "SHELFEDGE_ENV": "dev",
            "PASS_THROUGH": "/,/static/,/healthz",
        },
    )
    dev = WranglerDev(settings)
    dev.start()
    try:
        with httpx.Client(base_url=dev.base_url, timeout=30.0, trust_env=False) as http:
            warm = http.get("/healthz")
        assert warm.status_code == 200, f"pass-through /healthz: {warm.status_code} {warm.text}"
        yield dev
    finally:
        pids = list(dev.process_commands())
        dev.stop()
    assert _alive(pids) == [], f"wrangler/workerd processes survived stop(): {_alive(pids)}"


@pytest.fixture
async def client(edge: WranglerDev) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the Worker, with no cookie jar in play (each request sets its Cookie)."""
    async with httpx.AsyncClient(base_url=edge.base_url, timeout=15.0, trust_env=False) as http:
        yield http


@pytest.fixture
def origin_up(origin: OriginServer) -> OriginServer:
    """The origin, running, with an empty request log and no delays."""
    if not origin.running:
        origin.start()
    origin.log.clear()
    origin.log.clear_delays()
    return origin


async def get_slot(
    client: httpx.AsyncClient,
    key: FragmentKey = KEY,
    cookie: str | bytes | None = None,
) -> httpx.Response:
    """GET the slot of `key` from the Worker, sending exactly `cookie` (or no Cookie header)."""
    client.cookies.clear()
    raw = cookie.encode("ascii") if isinstance(cookie, str) else cookie
    headers = httpx.Headers([] if raw is None else [(b"cookie", raw)])
    response = await client.get(
        f"/se/slot/{key.slot}", params={"locale": key.locale}, headers=headers
    )
    client.cookies.clear()
    return response


def cache_status(response: httpx.Response) -> str:
    return str(response.headers.get("x-shelfedge-cache", "<no X-Shelfedge-Cache>"))


async def purge(client: httpx.AsyncClient, key: FragmentKey = KEY) -> int:
    """Purge `key` by its bundle tag; the number of cache entries the Worker dropped."""
    response = await client.post(
        "/se/purge",
        json={"tags": [bundle_tag(key)]},
        headers={"authorization": f"Bearer {PURGE_TOKEN}"},
    )
    assert response.status_code == 200, response.text
    purged = response.json()["purged"]
    assert isinstance(purged, int), response.text
    return purged


async def stored(store: Store, key: FragmentKey = KEY) -> Envelope:
    raw = await store.get_envelope(key)
    assert raw is not None, f"the origin's Redis holds no bundle for {key}"
    return open_envelope(raw)


async def expected_html(store: Store, key: FragmentKey = KEY) -> str:
    """What the Worker must serve a shopper without consent from the origin's current bundle."""
    bundle = decode_bundle((await stored(store, key)).body)
    chosen = rerank(bundle.candidates, bundle.rerank, ShopperContext.anonymous(key.segment))
    return assemble(bundle, chosen, key.variant)


async def fresh_miss(client: httpx.AsyncClient, origin: OriginServer) -> tuple[str, float]:
    """Purge KEY, fetch it (a MISS), return its body and when the answer arrived (monotonic)."""
    await purge(client)
    before = origin.log.count(BUNDLE_PATH)
    response = await get_slot(client)
    arrived = time.monotonic()
    assert cache_status(response) == "MISS", response.headers
    assert origin.log.count(BUNDLE_PATH) == before + 1
    return response.text, arrived


async def wait_for_count(origin: OriginServer, wanted: int, within: float) -> None:
    """Poll the origin's log until it holds `wanted` bundle requests."""
    deadline = time.monotonic() + within
    while origin.log.count(BUNDLE_PATH) < wanted:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"origin saw {origin.log.count(BUNDLE_PATH)} bundle requests after "
                f"{within} s, expected {wanted}: {origin.log.requests}"
            )
        await asyncio.sleep(0.02)


async def sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


async def test_miss_then_hit_fetches_the_origin_once(
    client: httpx.AsyncClient, origin_up: OriginServer, store: Store
) -> None:
    await purge(client)

    first = await get_slot(client)
    match = VISITOR_ID.search(first.headers.get("set-cookie", ""))
    assert match is not None, first.headers
    second = await get_slot(client, cookie=f"se_vid={match.group(1)}")

    assert (first.status_code, second.status_code) == (200, 200)
    assert (cache_status(first), cache_status(second)) == ("MISS", "HIT")
    assert origin_up.log.count(BUNDLE_PATH) == 1
    assert first.text == second.text == await expected_html(store)
    for response in (first, second):
        assert response.headers["cache-control"] == "private, no-store"
        assert SERVER_TIMING.fullmatch(response.headers["server-timing"]), response.headers
        assert response.headers["x-shelfedge-variant"] == "control"
        assert response.headers["content-type"].startswith("text/html")
    attributes = {part.strip().lower() for part in first.headers["set-cookie"].split(";")}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
    assert "set-cookie" not in second.headers


async def test_stale_serves_at_once_and_revalidates_once(
    client: httpx.AsyncClient, origin_up: OriginServer, store: Store
) -> None:
    body, arrived = await fresh_miss(client, origin_up)
    before = origin_up.log.count(BUNDLE_PATH)
    origin_up.log.set_delay(BUNDLE_PATH, ORIGIN_DELAY)  # the revalidation stays in flight
    await sleep_until(arrived + MAX_AGE + 0.3)

    burst = await asyncio.gather(*(get_slot(client) for _ in range(8)))
    slowest = max(r.elapsed.total_seconds() for r in burst)
    await wait_for_count(origin_up, before + 1, within=5.0)
    await asyncio.sleep(0.5)  # room for a duplicate revalidation to show up

    assert [r.status_code for r in burst] == [200] * 8
    assert [cache_status(r) for r in burst] == ["STALE"] * 8
    assert all(r.text == body for r in burst)
    assert slowest < ORIGIN_DELAY, f"a stale answer waited for the origin ({slowest:.2f} s)"
    revalidations = origin_up.log.requests[before:]
    assert [(r.conditional, r.status) for r in revalidations] == [(True, 304)]
    after = await get_slot(client)
    assert cache_status(after) == "HIT"
    assert after.text == body
    assert origin_up.log.count(BUNDLE_PATH) == before + 1


async def test_stale_if_error_then_safe_default_while_origin_is_down(
    client: httpx.AsyncClient, origin_up: OriginServer
) -> None:
    body, arrived = await fresh_miss(client, origin_up)
    before = origin_up.log.count(BUNDLE_PATH)
    origin_up.stop()
    try:
        await sleep_until(arrived + MAX_AGE + STALE_WHILE_REVALIDATE + 0.3)
        stale = await get_slot(client)
        never_cached = await get_slot(client, NEVER_CACHED)
        other_slot = await get_slot(client, FragmentKey("cart-upsell", SEGMENT))
    finally:
        origin_up.start()
    back = await get_slot(client)

    assert (stale.status_code, cache_status(stale)) == (200, "STALE")
    assert stale.text == body
    assert (never_cached.status_code, cache_status(never_cached)) == (200, "FALLBACK")
    hero = WORKER_SLOTS.get(SLOT)
    assert hero is not None
    assert hero.fallback_html
    assert never_cached.text == hero.fallback_html
    assert never_cached.headers["cache-control"] == "private, no-store"
    assert (other_slot.status_code, cache_status(other_slot), other_slot.text) == (
        200,
        "FALLBACK",
        "",
    )
    assert (back.status_code, cache_status(back), back.text) == (200, "REVALIDATED", body)
    assert [(r.conditional, r.status) for r in origin_up.log.requests[before:]] == [(True, 304)]


async def test_slow_origin_is_cut_off_at_the_timeout_with_the_safe_default(
    client: httpx.AsyncClient, origin_up: OriginServer
) -> None:
    await purge(client)
    before = origin_up.log.count(BUNDLE_PATH)
    origin_up.log.set_delay(BUNDLE_PATH, ORIGIN_TIMEOUT + 1.0)

    response = await get_slot(client)
    await wait_for_count(origin_up, before + 1, within=ORIGIN_TIMEOUT + 5.0)  # it does end

    hero = WORKER_SLOTS.get(SLOT)
    assert hero is not None
    assert (response.status_code, cache_status(response)) == (200, "FALLBACK")
    assert response.text == hero.fallback_html
    waited = response.elapsed.total_seconds()
    assert ORIGIN_TIMEOUT - 0.1 <= waited < ORIGIN_TIMEOUT + 0.9, f"answered after {waited:.2f} s"


async def test_purge_by_bundle_tag_brings_the_new_content(
    client: httpx.AsyncClient, origin_up: OriginServer, store: Store, slots: SlotCatalog
) -> None:
    old_body, _ = await fresh_miss(client, origin_up)
    old_etag = (await stored(store)).etag

    await seed_demo(store, slots, seed=7, n_skus=N_SKUS)
    new_etag = (await stored(store)).etag
    still_cached = await get_slot(client)
    unauthorized = await client.post("/se/purge", json={"tags": [bundle_tag(KEY)]})
    purged = await purge(client)
    before = origin_up.log.count(BUNDLE_PATH)
    refetched = await get_slot(client)

    assert new_etag != old_etag
    assert (cache_status(still_cached), still_cached.text) == ("HIT", old_body)
    assert unauthorized.status_code == 403
    assert purged >= 1
    assert (refetched.status_code, cache_status(refetched)) == (200, "MISS")
    assert refetched.text == await expected_html(store)
    assert refetched.text != old_body
    assert [(r.conditional, r.status) for r in origin_up.log.requests[before:]] == [(False, 200)]


@pytest.mark.parametrize(
    ("cookie", "new_visitor"),
    [
        pytest.param(
            "se_vid=not-a-visitor; se_seg=%%%garbage.sig; ;;; =; ==x; se_vid", True, id="junk"
        ),
        pytest.param(
            "se_consent=1; se_cart=|||@@@|" + "A" * 300 + "; se_rv=~~~|x~99999999999999|;;",
            True,
            id="junk-with-consent",
        ),
        pytest.param(b"se_vid=\xff\xfe\x80; se_seg=\xc3\x28", True, id="not-utf8"),
        pytest.param(
            "se_vid=" + "f" * 32 + "; filler=" + "a" * 1100 + ";;;", False, id="oversized-value"
        ),
        pytest.param(
            "; ".join(f"c{i}=" + "x" * 90 for i in range(120)) + "; se_vid=" + "e" * 32,
            True,
            id="oversized-header",
        ),
    ],
)
async def test_garbage_and_oversized_cookies_still_get_the_slot(
    client: httpx.AsyncClient,
    origin_up: OriginServer,
    store: Store,
    cookie: str | bytes,
    new_visitor: bool,
) -> None:
    """Garbage is ignored: an oversized header as a whole, an oversized value on its own."""
    response = await get_slot(client, cookie=cookie)

    assert response.status_code == 200, response.text[:500]
    assert cache_status(response) in CACHE_STATUSES - {"FALLBACK"}
    assert response.text == await expected_html(store)
    assert response.headers["cache-control"] == "private, no-store"
    set_cookie = response.headers.get("set-cookie", "")
    assert (VISITOR_ID.search(set_cookie) is not None) == new_visitor, set_cookie


DEV_PROXY_ATTEMPTS = 3


def _dev_proxy_lost_connection(response: httpx.Response) -> bool:
    """wrangler dev's proxy (miniflare's entry worker) answers 500 "Network connection lost"
    when the Worker answers a request whose body the client is still streaming."""
    return response.status_code == 500 and "Network connection lost" in response.text


async def _post_oversized(
    client: httpx.AsyncClient,
    path: str,
    body: Callable[[], bytes | AsyncIterator[bytes]],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a body the Worker refuses before reading all of it. Its early answer races the
    rest of the upload in wrangler dev's local proxy: the proxy may answer 500 "Network
    connection lost", or close the connection under the answer (a read error here). That race
    is the local proxy's, not the Worker's; the request is sent again (a Worker that never
    answers 413 still fails the test)."""
    for attempt in range(1, DEV_PROXY_ATTEMPTS + 1):
        try:
            response = await client.post(path, content=body(), headers=headers)
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            if attempt == DEV_PROXY_ATTEMPTS:
                raise
            continue
        if attempt == DEV_PROXY_ATTEMPTS or not _dev_proxy_lost_connection(response):
            return response
    raise AssertionError("unreachable")


async def test_the_se_surface_bounds_and_checks_bodies(client: httpx.AsyncClient) -> None:
    """edge.surface in the Worker: bodies read in chunks up to their limit, then 413; declared
    lengths refused before reading; malformed bodies 400; other methods 405 with Allow."""
    auth = {"authorization": f"Bearer {PURGE_TOKEN}"}
    oversized = b'{"tags": ["' + b"a" * MAX_PURGE_BODY + b'"]}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(oversized), 4096):
            yield oversized[start : start + 4096]

    declared = await _post_oversized(client, "/se/purge", lambda: oversized, auth)
    streamed = await _post_oversized(client, "/se/purge", chunked, auth)
    malformed = await client.post("/se/purge", content=b'{"tags": [1]}', headers=auth)
    beacon = await _post_oversized(client, "/se/events", lambda: b"x" * (MAX_BEACON_BODY + 1))
    wrong_method = await client.get("/se/purge")

    assert (declared.status_code, streamed.status_code) == (413, 413), streamed.text
    assert "body over" in streamed.json()["error"]
    assert malformed.status_code == 400
    assert "tags" in malformed.json()["error"]
    assert beacon.status_code == 413
    assert (wrong_method.status_code, wrong_method.headers.get("allow")) == (405, "POST")


async def test_only_allow_listed_paths_reach_the_origin(
    client: httpx.AsyncClient, origin_up: OriginServer
) -> None:
    refused = {
        p: (await client.get(p)).status_code
        for p in ("/admin", "/v1/edge-config", "/metrics", "/openapi.json")
    }
    events = await client.post("/v1/events", content=b"{}")
    health = await client.get("/healthz")  # allow-listed by this test's PASS_THROUGH

    assert refused == dict.fromkeys(refused, 404)
    assert events.status_code == 404
    assert health.status_code == 200
    assert {r.path for r in origin_up.log.requests} == {"/healthz"}


async def test_a_passed_through_page_gets_one_visitor_id_for_its_slots(
    client: httpx.AsyncClient, origin_up: OriginServer
) -> None:
    fresh = await client.get("/")
    returning = await client.get("/", headers={"cookie": f"se_vid={'a' * 32}"})
    image = await client.get("/static/img/books.svg")

    assert fresh.status_code == 200
    assert VISITOR_ID.search(fresh.headers.get("set-cookie", "")) is not None
    assert "se_vid" not in returning.headers.get("set-cookie", "")
    assert "se_vid" not in image.headers.get("set-cookie", "")


async def test_purge_with_a_wrong_token_is_refused(client: httpx.AsyncClient) -> None:
    wrong = await client.post(
        "/se/purge", json={"tags": ["sku:X"]}, headers={"authorization": "Bearer nope"}
    )
    near = await client.post(
        "/se/purge", json={"tags": ["sku:X"]}, headers={"authorization": f"Bearer {PURGE_TOKEN}x"}
    )
    assert (wrong.status_code, near.status_code) == (403, 403)


def test_a_worker_without_its_secrets_refuses_to_serve(
    origin: OriginServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No SHELFEDGE_ENV means production: no SEGMENT_SECRET / EVENT_KEYS is a 500 naming them,
    never a Worker signing and verifying with the public development secret."""
    worker_dir = prepare_worker(tmp_path_factory.mktemp("workerd-prod") / "worker")
    settings = DevSettings(
        worker_dir=worker_dir,
        state_dir=tmp_path_factory.mktemp("wrangler-state-prod"),
        variables={"ORIGIN_URL": origin.url},
    )
    dev = WranglerDev(settings)
    dev.start()
    try:
        with httpx.Client(base_url=dev.base_url, timeout=30.0, trust_env=False) as http:
            slot = http.get(f"/se/slot/{SLOT}")
    finally:
        dev.stop()
    assert slot.status_code == 500
    assert "SEGMENT_SECRET" in slot.text
    assert "EVENT_KEYS" in slot.text


def test_stopping_the_worker_leaves_no_workerd(edge: WranglerDev) -> None:
    running = edge.process_commands()
    workerd = [pid for pid, command in running.items() if "workerd" in command]
    assert workerd, f"no workerd in wrangler's process group: {running}"

    edge.stop()

    assert _alive(list(running)) == []
    deadline = time.monotonic() + 5.0
    while _port_accepts(edge.settings.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _port_accepts(edge.settings.port)
