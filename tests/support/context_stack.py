"""A shopper-context stack for tests and the latency bench: a seeded Redis with segment rules,
the real origin (its clickstream going to a real broker), the context processor folding it, and
a real local edge in front (behaviour beacons and segment refresh), each on a loopback port.

`context_stack` is an async context manager yielding `ContextStack`; `Shopper` is a consenting
visitor with a cookie jar that sends the storefront's beacons and reads the pages' slots, as the
demo's script would. Test support only: loopback, nothing it did not start.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from edge.adapters.local_server import EdgeCredentials, create_edge_app
from edge.config import EdgeConfig
from edge.segment_refresh import RETRY_DELAY_S
from fragments.slots import load_slots
from origin.context.processor import ContextProcessor
from origin.context.rules import parse_rules
from origin.context.store import ContextStore
from origin.settings import Settings
from tests.origin.events.support import EVENT_KEYS
from tests.support.live_stack import seed_with_canary
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect

SECRET = "context-stack-segment-secret-0123456789"
EDGE_TOKEN = "context-stack-edge-token-0123456789"
EVENT_KEYS_SETTING = ",".join(f"{k.kid}={k.secret.decode()}" for k in EVENT_KEYS.keys)
"""`EVENT_KEYS` as a Worker's ``EVENT_KEYS`` variable."""
CATEGORY = "electronics"
SEGMENT = "tech-enthusiasts"
RULES: dict[str, Any] = {
    "default_segment": "everyone",
    "rules": [
        {
            "name": "tech-browsers",
            "segment": SEGMENT,
            "when": [{"feature": f"views:{CATEGORY}", "op": "gte", "value": 3,
                      "within_minutes": 30}],
        }
    ],
}  # fmt: skip
SLOT_SEGMENT = re.compile(r'data-slot="([^"]+)" data-segment="([^"]*)"')
ITEM_SKU = re.compile(r'data-se-sku="([^"]+)"')
PRODUCT = re.compile(r'data-sku="([^"]+)" data-category="([^"]+)" data-price-cents="(\d+)"')


@dataclass(frozen=True, slots=True)
class ContextStack:
    origin: OriginServer
    edge: OriginServer
    processor: ContextProcessor


@dataclass(frozen=True, slots=True)
class Page:
    """A page as the shopper got it: its slots' segments and items, its Set-Cookie headers."""

    status: int
    html: str
    set_cookies: tuple[str, ...]

    def slot_segments(self) -> dict[str, str]:
        return dict(SLOT_SEGMENT.findall(self.html))

    def items(self) -> list[str]:
        return ITEM_SKU.findall(self.html)

    def product(self) -> tuple[str, str, int] | None:
        found = PRODUCT.search(self.html)
        return None if found is None else (found[1], found[2], int(found[3]))


@dataclass(slots=True)
class Shopper:
    """A consenting visitor with a cookie jar (the browser's side of the cookies)."""

    client: httpx.AsyncClient
    visitor: str = field(default_factory=lambda: secrets.token_hex(16))
    jar: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.jar.update(se_vid=self.visitor, se_consent="1")

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.jar.items())

    async def page(self, path: str) -> Page:
        answer = await self.client.get(path, headers={"cookie": self.cookie_header()})
        set_cookies = tuple(answer.headers.get_list("set-cookie"))
        for header in set_cookies:
            name, _, rest = header.partition("=")
            self.jar[name] = rest.split(";", 1)[0]
        return Page(answer.status_code, answer.text, set_cookies)

    async def beacon(self, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        answer = await self.client.post(
            "/se/events", json={"events": list(events)}, headers={"cookie": self.cookie_header()}
        )
        assert answer.status_code == 202, answer.text
        doc: dict[str, Any] = answer.json()
        return doc

    async def view(self, sku: str) -> tuple[str, str, int]:
        """Open a product page and send its view beacon, as the storefront script does."""
        product = (await self.page(f"/products/{sku}")).product()
        assert product is not None, f"no product on /products/{sku}"
        sent = await self.beacon([view_beacon(product)])
        assert sent["tracked"] == 1, sent
        return product


def view_beacon(product: tuple[str, str, int]) -> dict[str, Any]:
    """The storefront script's view beacon for a product page's (sku, category, price)."""
    sku, category, price = product
    return {"type": "view", "sku": sku, "category": category, "price_cents": price}


CHASE_S = 10 * RETRY_DELAY_S
"""After the processor folded a view: the edge's chase asks again (`RETRY_DELAY_S` apart), with
slack for a loaded machine (no page request comes in between, so waiting longer proves the
same)."""


async def pages_around_beacons(
    shopper: Shopper, processor: ContextProcessor, views: Sequence[Mapping[str, Any]]
) -> tuple[Page, Page]:
    """The home page, then `views` sent as beacons alone (each tracked), then the home page
    again once the processor folded them and the edge's chase had time to ask: no page request
    in between, so only the beacons can have started the segment refresh."""
    first = await shopper.page("/")
    await asyncio.sleep(CHASE_S)  # that page's own refresh (no cookie yet) is over
    before = processor.stats.folded
    for view in views:
        sent = await shopper.beacon([view])
        assert sent["tracked"] == 1, sent
    await seconds_to_fold(processor, before + len(views))
    await asyncio.sleep(CHASE_S)
    return first, await shopper.page("/")


async def seconds_to_fold(processor: ContextProcessor, total: int, within: float = 30.0) -> float:
    """Seconds until the processor has folded `total` events (fails after `within`)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while processor.stats.folded < total:
        if loop.time() - started > within:
            raise AssertionError(f"the context processor folded no view in {within} s")
        await asyncio.sleep(0.02)
    return loop.time() - started


async def warm(client: httpx.AsyncClient, within: float = 60.0) -> None:
    """Ask for the home page until its hero slot is in it: the edge's cache holds the hero's
    bundles, so a later page is not decided by a cold origin fetch racing its slot budget."""
    deadline = asyncio.get_running_loop().time() + within
    for segment in ("everyone", SEGMENT):
        persona = Shopper(client)
        persona.jar["se_consent"] = "0"
        while 'data-slot="home-hero"' not in (await persona.page(f"/?persona={segment}")).html:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the home page's hero never arrived in {within} s")
            await asyncio.sleep(0.2)


async def products_of(client: httpx.AsyncClient, category: str, n: int) -> list[str]:
    """The first `n` demo SKUs of `category` (read from their product pages)."""
    found: list[str] = []
    for index in range(400):
        html = (await client.get(f"/products/SKU-{index:05d}")).text
        match = PRODUCT.search(html)
        if match and match[2] == category:
            found.append(match[1])
            if len(found) == n:
                return found
    raise AssertionError(f"fewer than {n} demo products in {category}")


async def _assigned(processor: ContextProcessor, within: float = 30.0) -> None:
    """Wait until the processor's consumer holds the clickstream's partitions."""
    deadline = asyncio.get_running_loop().time() + within
    while not processor.consumer.assignment():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the context processor joined no group in {within} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def context_stack(
    redis_url: str, bootstrap: str, *, refresh_after_s: float = 60.0
) -> AsyncIterator[ContextStack]:
    """Seed (demo catalog and `RULES`), then run origin, processor and local edge until exit."""
    await seed_with_canary(redis_url)
    redis = connect(redis_url)
    try:
        store = ContextStore(redis, ttl_seconds=3600, timeout=2.0)
        await store.put_rules(parse_rules(RULES))
        settings = Settings(
            redis_url=redis_url,
            kafka_bootstrap=bootstrap,
            segment_secret=SECRET,
            env="dev",  # the demo storefront is mounted in dev only
            event_keys=EVENT_KEYS,
            edge_config_token=EDGE_TOKEN,
            redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS,
        )
        processor = ContextProcessor(
            bootstrap, f"ctx-{uuid.uuid4().hex[:8]}", store, session_timeout_ms=3000
        )
        await processor.start()
        stop = asyncio.Event()
        task = asyncio.create_task(processor.run(stop))
        try:
            await _assigned(processor)
            with OriginServer.for_origin(settings) as origin:
                config = replace(
                    EdgeConfig.from_slots(load_slots(), SECRET),
                    segment_refresh_after_s=refresh_after_s,
                )
                credentials = EdgeCredentials(event_keys=EVENT_KEYS, edge_config_token=EDGE_TOKEN)
                app = create_edge_app(config, origin.url, credentials=credentials)
                with OriginServer(app) as edge:
                    yield ContextStack(origin, edge, processor)
        finally:
            stop.set()
            await task
            await processor.stop()
    finally:
        await redis.aclose()
