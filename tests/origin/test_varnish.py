"""The origin behind a real Varnish 7.1 running deploy/varnish/shelfedge.vcl.

Proves that a shared cache honours the origin's cache headers: hits within max-age, one
background refresh within stale-while-revalidate, stale-if-error while the origin is down or
answers 5xx, xkey tag purges that evict exactly the bundles showing a SKU (and soft purges, and
the purge ACL), ETag/304, and that personal responses are never cached. The demo catalog
(500 SKUs) is seeded once per module into the suite's Redis; each test gets its own, empty
Varnish in front of one origin server.

Policies of the real slots (60 s and more) are too long to wait out, so two test slots are
added to the repository's slots.toml: `flash-deal` (max-age 1 s, stale-while-revalidate 30 s)
and `outage-shelf` (max-age 1 s, stale-while-revalidate 1 s, stale-if-error 120 s).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fragments.ids import DEFAULT_LOCALE, FragmentKey
from fragments.slots import DEFAULT_SLOTS_FILE, SlotCatalog, parse_slots
from fragments.tags import bundle_tag, sku_tag
from invalidation.purgers.varnish import VarnishPurger
from origin.core.demo_catalog import DEFAULT_SEGMENT
from origin.core.purge_queue import PurgeMode
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from origin.web import problems
from tests.support.origin_server import OriginServer, normalize_target
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect
from tests.support.varnish import SHELFEDGE_VCL, Varnish, render_vcl

TEST_SLOTS = """
[slots.flash-deal]
title = "Flash deals"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 20
shown = 4
[slots.flash-deal.policy]
max_age = 1
stale_while_revalidate = 30
stale_if_error = 60

[slots.outage-shelf]
title = "Still here"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 20
shown = 4
[slots.outage-shelf.policy]
max_age = 1
stale_while_revalidate = 1
stale_if_error = 120
"""

ORIGIN_BACKEND = "shelfedge_origin"
"""The backend's name in deploy/varnish/shelfedge.vcl."""
BUNDLE_SLOTS = ("home-hero", "pdp-cross-sell", "cart-upsell")


def catalog() -> SlotCatalog:
    """The repository's slots plus the two short-lived test slots."""
    text = DEFAULT_SLOTS_FILE.read_text(encoding="utf-8") + TEST_SLOTS
    return parse_slots(text, f"{DEFAULT_SLOTS_FILE.name} + test slots")


@pytest.fixture(scope="module")
async def store(redis_url: str) -> AsyncIterator[Store]:
    """The suite's Redis, emptied and seeded with the demo catalog and the test slots."""
    client = connect(redis_url)
    try:
        await client.flushall()
        report = await seed_demo(Store(client, 5.0), catalog(), seed=42, n_skus=500)
        assert report.bundles > 0
        yield Store(client, 5.0)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def origin(redis_url: str, store: Store) -> Iterator[OriginServer]:
    with OriginServer.for_origin(
        Settings(redis_url=redis_url, redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS), catalog()
    ) as server:
        yield server


@pytest.fixture
def varnish(origin: OriginServer) -> Iterator[Varnish]:
    """A fresh, empty Varnish in front of the (running) origin; the origin's log cleared."""
    if not origin.running:
        origin.start()
    with Varnish(backend_host=origin.host, backend_port=origin.port) as cache:
        origin.log.clear()
        origin.log.clear_delays()
        yield cache


@pytest.fixture
async def client(varnish: Varnish) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=varnish.url, timeout=10.0) as http:
        yield http


def bundle(slot: str, segment: str = DEFAULT_SEGMENT) -> FragmentKey:
    return FragmentKey(slot, segment)


async def wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def test_render_vcl_fills_exactly_the_backend_placeholders() -> None:
    rendered = render_vcl(SHELFEDGE_VCL.read_text(encoding="utf-8"), "10.0.0.5", 8600)
    assert '.host = "10.0.0.5";' in rendered
    assert '.port = "8600";' in rendered
    assert "${" not in rendered
    with pytest.raises(ValueError, match=r"no \$\{SHELFEDGE_ORIGIN_PORT\} placeholder"):
        render_vcl('.host = "${SHELFEDGE_ORIGIN_HOST}";', "h", 1)
    with pytest.raises(ValueError, match=r"unknown placeholder \$\{OTHER\}"):
        render_vcl("${SHELFEDGE_ORIGIN_HOST}:${SHELFEDGE_ORIGIN_PORT} ${OTHER}", "h", 1)


async def test_second_get_within_max_age_is_a_hit(
    client: httpx.AsyncClient, origin: OriginServer
) -> None:
    key = bundle("home-hero")
    first = await client.get(key.bundle_path())
    assert first.status_code == 200
    assert first.headers["x-cache"] == "MISS"
    second = await client.get(key.bundle_path())
    assert second.status_code == 200
    assert second.headers["x-cache"] == "HIT"
    assert int(second.headers["age"]) >= 0
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    # The query order and a shopper's cookies do not split or bypass the shared object.
    reordered = (
        f"/v1/bundles/{key.slot}?locale={key.locale}&variant={key.variant}&segment={key.segment}"
    )
    third = await client.get(reordered, headers={"Cookie": "se_seg=abc; session=xyz"})
    assert third.headers["x-cache"] == "HIT"
    assert origin.log.count(key.bundle_path()) == 1
    # What the cache consumed is not forwarded; what a CDN in front may need is.
    assert "surrogate-control" not in second.headers
    assert "xkey" not in second.headers
    assert not [h for h in second.headers if h.lower().startswith("x-se-")]
    assert "sku:" in second.headers["surrogate-key"]
    assert second.headers["cache-control"].startswith("public, max-age=0, s-maxage=60")


async def test_stale_while_revalidate_serves_stale_and_refreshes_once(
    client: httpx.AsyncClient, origin: OriginServer, varnish: Varnish
) -> None:
    key = bundle("flash-deal")
    warm = await client.get(key.bundle_path())
    assert warm.headers["x-cache"] == "MISS"
    assert origin.log.count(key.bundle_path()) == 1
    await asyncio.sleep(1.3)  # past max-age=1, well within stale-while-revalidate=30
    origin.log.set_delay(key.bundle_path(), 1.0)  # a slow origin makes "immediately" visible

    started = time.perf_counter()
    stale = await asyncio.gather(*(client.get(key.bundle_path()) for _ in range(8)))
    elapsed = time.perf_counter() - started

    assert [r.status_code for r in stale] == [200] * 8
    assert {r.headers["x-cache"] for r in stale} == {"HIT-STALE"}
    assert all(r.content == warm.content for r in stale)
    assert all(int(r.headers["age"]) >= 1 for r in stale)
    assert elapsed < 0.7, f"stale answers took {elapsed:.2f} s: they waited for the origin"
    await wait_for(lambda: origin.log.count(key.bundle_path()) == 2, 5.0, "the refresh")
    await asyncio.sleep(0.3)
    assert origin.log.count(key.bundle_path()) == 2, "more than one background fetch"
    refresh = [r for r in origin.log.requests if r.path == f"/v1/bundles/{key.slot}"][-1]
    assert (refresh.conditional, refresh.status) == (True, 304)  # revalidated with the ETag
    assert varnish.counters("MAIN.s_bgfetch")["MAIN.s_bgfetch"] == 1
    origin.log.clear_delays()
    await asyncio.sleep(0.1)  # let Varnish install the refreshed object
    fresh = await client.get(key.bundle_path())
    assert fresh.headers["x-cache"] == "HIT"
    assert fresh.headers["age"] == "0"
    assert origin.log.count(key.bundle_path()) == 2


async def test_stale_if_error_serves_the_cached_bundle_while_the_origin_is_down(
    client: httpx.AsyncClient, origin: OriginServer, varnish: Varnish
) -> None:
    key = bundle("outage-shelf")
    cold = bundle("outage-shelf", "bargain-hunters")
    warm = await client.get(key.bundle_path())
    assert warm.headers["x-cache"] == "MISS"
    warmed_at = time.monotonic()
    origin.stop()
    try:
        await asyncio.sleep(max(0.0, warmed_at + 1.3 - time.monotonic()))
        # Within stale-while-revalidate: stale at once; the failed refresh is abandoned.
        in_swr = await client.get(key.bundle_path())
        assert (in_swr.status_code, in_swr.headers["x-cache"]) == (200, "HIT-STALE")
        assert in_swr.content == warm.content

        await asyncio.sleep(max(0.0, warmed_at + 2.4 - time.monotonic()))
        # Past max-age + stale-while-revalidate, within stale-if-error, and the health probe
        # has not noticed the outage (forced here, it takes it about 6 s): Varnish tries the
        # origin, fails, and falls back to the stale copy.
        varnish.admin("backend.set_health", ORIGIN_BACKEND, "healthy")
        in_sie = await client.get(key.bundle_path())
        assert (in_sie.status_code, in_sie.headers["x-cache"]) == (200, "HIT-STALE-IF-ERROR")
        assert in_sie.content == warm.content
        assert in_sie.headers["etag"] == warm.headers["etag"]
        assert int(in_sie.headers["age"]) >= 2

        # Once the probe marks the origin sick, the stale copy is served without trying it.
        varnish.admin("backend.set_health", ORIGIN_BACKEND, "sick")
        sick = await client.get(key.bundle_path())
        assert (sick.status_code, sick.headers["x-cache"]) == (200, "HIT-STALE-IF-ERROR")
        assert sick.content == warm.content

        # Nothing cached, nothing to fall back on: the cache cannot invent a bundle.
        missing = await client.get(cold.bundle_path())
        assert missing.status_code == 503
    finally:
        origin.start()
    try:
        assert origin.log.count(key.bundle_path()) == 1  # the warm-up only
        varnish.admin("backend.set_health", ORIGIN_BACKEND, "healthy")
        # After "connection refused" Varnish holds the backend down for
        # backend_remote_error_holddown (0.25 s by default) before it connects again.
        await asyncio.sleep(0.3)
        back = await client.get(key.bundle_path())
        assert (back.status_code, back.headers["x-cache"]) == (200, "MISS")
        refetch = origin.log.requests[-1]
        assert refetch.target == normalize_target(key.bundle_path())
        assert (refetch.conditional, refetch.status) == (True, 304)  # the kept copy's ETag
    finally:
        varnish.admin("backend.set_health", ORIGIN_BACKEND, "auto")


async def test_xkey_purge_of_a_sku_evicts_exactly_the_bundles_showing_it(
    client: httpx.AsyncClient, origin: OriginServer, store: Store
) -> None:
    keys = [bundle(slot, seg) for slot in BUNDLE_SLOTS for seg in ("everyone", "bargain-hunters")]
    skus_of = {key: set(await store.bundle_skus(key)) for key in keys}
    counts: dict[str, int] = {}
    for skus in skus_of.values():
        for sku in skus:
            counts[sku] = counts.get(sku, 0) + 1
    sku = min(s for s, n in counts.items() if 1 < n < len(keys))
    showing = {key for key in keys if sku in skus_of[key]}
    indexed = await store.bundles_showing([sku], [key.partition for key in keys])
    assert showing == {k for k in indexed[sku] if k.locale == DEFAULT_LOCALE}
    for key in keys:
        assert (await client.get(key.bundle_path())).headers["x-cache"] == "MISS"
        warm = await client.get(key.bundle_path())
        assert warm.headers["x-cache"] == "HIT"
        assert (sku_tag(sku) in warm.headers["surrogate-key"].split()) == (key in showing)

    purge = await client.request(
        "PURGE", "/", headers={"xkey-purge": f"{sku_tag(sku)} sku:NO-SUCH"}
    )
    assert purge.status_code == 200
    assert purge.headers["x-purged"] == str(len(showing))

    for key in keys:
        again = await client.get(key.bundle_path())
        assert again.status_code == 200
        expected = ("MISS", 2) if key in showing else ("HIT", 1)
        assert (again.headers["x-cache"], origin.log.count(key.bundle_path())) == expected, key


async def test_softpurge_keeps_serving_stale_while_refreshing(
    client: httpx.AsyncClient, origin: OriginServer
) -> None:
    soft_key, hard_key = bundle("pdp-cross-sell"), bundle("pdp-cross-sell", "bargain-hunters")
    for key in (soft_key, hard_key):
        assert (await client.get(key.bundle_path())).headers["x-cache"] == "MISS"
    purge = await client.request(
        "PURGE",
        "/",
        headers={"xkey-softpurge": bundle_tag(soft_key), "xkey-purge": bundle_tag(hard_key)},
    )
    assert (purge.status_code, purge.headers["x-purged"]) == (200, "2")
    stale = await client.get(soft_key.bundle_path())
    assert stale.headers["x-cache"] == "HIT-STALE"  # soft: served once more, refreshed behind
    await wait_for(lambda: origin.log.count(soft_key.bundle_path()) == 2, 5.0, "the refresh")
    gone = await client.get(hard_key.bundle_path())
    assert gone.headers["x-cache"] == "MISS"  # hard: evicted
    assert origin.log.count(hard_key.bundle_path()) == 2


async def test_the_varnish_purger_sends_soft_and_hard_purges_as_the_vcl_expects(
    client: httpx.AsyncClient, origin: OriginServer, varnish: Varnish
) -> None:
    """The invalidation consumer's `VarnishPurger`, not a hand-made request: a soft purge keeps
    the bundle served stale (and refreshed behind), a hard one evicts; with soft purge off in
    its settings a soft request evicts too."""
    soft_key = bundle("pdp-cross-sell")
    hard_key = bundle("pdp-cross-sell", "bargain-hunters")
    forced_key = bundle("home-hero", "bargain-hunters")
    for key in (soft_key, hard_key, forced_key):
        assert (await client.get(key.bundle_path())).headers["x-cache"] == "MISS"
    purger = VarnishPurger(client, varnish.url)
    await purger.purge([bundle_tag(soft_key)], PurgeMode.SOFT)
    await purger.purge([bundle_tag(hard_key)], PurgeMode.HARD)
    await VarnishPurger(client, varnish.url, soft=False).purge(
        [bundle_tag(forced_key)], PurgeMode.SOFT
    )
    stale = await client.get(soft_key.bundle_path())
    assert stale.headers["x-cache"] == "HIT-STALE"
    await wait_for(lambda: origin.log.count(soft_key.bundle_path()) == 2, 5.0, "the refresh")
    for evicted in (hard_key, forced_key):
        assert (await client.get(evicted.bundle_path())).headers["x-cache"] == "MISS"


async def test_purge_is_refused_outside_the_acl_and_without_tags(
    client: httpx.AsyncClient, varnish: Varnish
) -> None:
    outsider = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=varnish.url, transport=outsider) as foreign:
        refused = await foreign.request("PURGE", "/", headers={"xkey-purge": "shelfedge"})
    assert refused.status_code == 403
    assert "x-purged" not in refused.headers
    no_tags = await client.request("PURGE", "/")
    assert no_tags.status_code == 400
    assert "xkey-purge" in no_tags.text


async def test_if_none_match_gets_304_from_the_cache(
    client: httpx.AsyncClient, origin: OriginServer
) -> None:
    key = bundle("cart-upsell")
    # On a miss Varnish fetches the full bundle and answers the condition itself.
    first = await client.get(key.bundle_path())
    etag = first.headers["etag"]
    assert etag.startswith('"')  # strong, as the origin sent it
    cold_key = bundle("cart-upsell", "bargain-hunters")
    cold_etag = (await origin_get(origin, cold_key)).headers["etag"]
    cold = await client.get(cold_key.bundle_path(), headers={"If-None-Match": cold_etag})
    assert (cold.status_code, cold.headers["x-cache"]) == (304, "MISS")
    hit = await client.get(key.bundle_path(), headers={"If-None-Match": etag})
    assert (hit.status_code, hit.headers["x-cache"], hit.content) == (304, "HIT", b"")
    assert hit.headers["etag"] == etag
    other = await client.get(key.bundle_path(), headers={"If-None-Match": '"not-it"'})
    assert (other.status_code, other.content) == (200, first.content)
    assert origin.log.count(key.bundle_path()) == 1


async def origin_get(origin: OriginServer, key: FragmentKey) -> httpx.Response:
    async with httpx.AsyncClient(base_url=origin.url) as direct:
        return await direct.get(key.bundle_path())


class FlakyOrigin:
    """A one-route origin with a shelfedge-style policy that can be told to answer 503."""

    POLICY = "max-age=1, stale-while-revalidate=1, stale-if-error=120"

    def __init__(self) -> None:
        self.failing = False
        self.app = Starlette(
            routes=[Route("/v1/bundles/flaky", self.bundle), Route("/readyz", self.ready)]
        )

    async def bundle(self, request: Request) -> Response:
        if self.failing:  # what the origin answers when Redis is unreachable
            return problems.unavailable("redis unreachable")
        etag = '"flaky-v1"'
        headers = {"Surrogate-Control": self.POLICY, "ETag": etag, "xkey": "slot:flaky"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return PlainTextResponse("flaky bundle v1", headers=headers)

    async def ready(self, request: Request) -> Response:
        return PlainTextResponse("ready", headers={"Cache-Control": "no-store"})


async def test_stale_if_error_covers_origin_5xx_answers() -> None:
    flaky = FlakyOrigin()
    with (
        OriginServer(flaky.app) as backend,
        Varnish(backend_host=backend.host, backend_port=backend.port) as cache,
    ):
        async with httpx.AsyncClient(base_url=cache.url) as http:
            warm = await http.get("/v1/bundles/flaky")
            assert (warm.status_code, warm.headers["x-cache"]) == (200, "MISS")
            cold = await http.get("/v1/bundles/flaky?segment=never-cached")
            assert cold.status_code == 200
            warmed_at = time.monotonic()
            flaky.failing = True
            await asyncio.sleep(max(0.0, warmed_at + 1.3 - time.monotonic()))
            in_swr = await http.get("/v1/bundles/flaky")
            assert (in_swr.status_code, in_swr.headers["x-cache"]) == (200, "HIT-STALE")
            await wait_for(lambda: backend.log.count("/v1/bundles/flaky") == 3, 5.0, "refresh")
            await asyncio.sleep(max(0.0, warmed_at + 2.4 - time.monotonic()))
            # The background 503 was abandoned, so the stale copy is still there to fall back on.
            in_sie = await http.get("/v1/bundles/flaky")
            assert (in_sie.status_code, in_sie.headers["x-cache"]) == (200, "HIT-STALE-IF-ERROR")
            assert in_sie.text == "flaky bundle v1"
            # A bundle whose copy is past its windows gets the origin's own problem answer.
            await asyncio.sleep(0)
            uncached = await http.get("/v1/bundles/flaky?segment=other")
            assert uncached.status_code == 503
            assert uncached.headers["content-type"] == "application/problem+json"
            flaky.failing = False
            recovered = await http.get("/v1/bundles/flaky")
            assert (recovered.status_code, recovered.headers["x-cache"]) == (200, "MISS")
        statuses = [r.status for r in backend.log.requests if r.path == "/v1/bundles/flaky"]
        # warm and cold 200s; four 503s (the abandoned background refresh, the foreground try
        # before the fallback, the fallback's own background try, the uncached bundle); the
        # recovery revalidated the copy that survived all of them (304).
        assert (statuses[:2], statuses[-1]) == ([200, 200], 304)
        assert Counter(statuses) == {200: 2, 503: 4, 304: 1}


def personal_app() -> Starlette:
    """Responses a shared cache must never store, each with an otherwise cacheable policy."""
    shared = "public, s-maxage=60"

    async def with_cookie(request: Request) -> Response:
        response = PlainTextResponse("hello", headers={"Cache-Control": shared})
        response.set_cookie("session", "abc")
        return response

    async def private(request: Request) -> Response:
        return PlainTextResponse(
            "mine",
            headers={"Cache-Control": "private, max-age=60", "Surrogate-Control": "max-age=60"},
        )

    async def no_store(request: Request) -> Response:
        return PlainTextResponse("gone", headers={"Cache-Control": "no-store"})

    async def shared_ok(request: Request) -> Response:
        return PlainTextResponse("shared", headers={"Cache-Control": shared})

    async def ready(request: Request) -> Response:
        return PlainTextResponse("ready", headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/cookie", with_cookie),
            Route("/private", private),
            Route("/no-store", no_store),
            Route("/shared", shared_ok),
            Route("/readyz", ready),
        ]
    )


async def test_personal_responses_are_never_cached() -> None:
    with (
        OriginServer(personal_app()) as backend,
        Varnish(backend_host=backend.host, backend_port=backend.port) as cache,
    ):
        async with httpx.AsyncClient(base_url=cache.url) as http:
            for path in ("/cookie", "/private", "/no-store", "/shared"):
                for _ in range(3):
                    http.cookies.clear()  # a shopper's cookie would make Varnish pass anyway
                    assert (await http.get(path)).status_code == 200
        assert [backend.log.count(p) for p in ("/cookie", "/private", "/no-store")] == [3, 3, 3]
        assert backend.log.count("/shared") == 1  # the control: the same policy without a cookie
