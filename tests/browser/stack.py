"""The whole shelfedge stack for browser tests, on free loopback ports, torn down afterwards.

`running_stack()` starts, in order: its own `redis-server` and Tansu broker (with every topic),
the demo catalog (seeded and built), the origin app (admin tokens, Kafka event sink) and the
local edge following the published experiments, each under uvicorn in a thread
(`tests.support.origin_server.OriginServer` serves any ASGI app), and the exposure aggregator
as a task of the caller's event loop. Exposures therefore travel the production path: the
edge's background batches -> ``POST /v1/events`` -> Kafka -> aggregator -> Redis counters.

`chromium()` launches Debian's Chromium through Playwright (``playwright install`` cannot
download browsers here) headless, with background networking off.

Nothing here skips: a missing ``redis-server``, broker binary or ``/usr/bin/chromium`` is an
error that says how to install it. It must never touch a service it did not start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from playwright.async_api import Browser, Playwright
from redis.asyncio import Redis

from edge.adapters.local_server import create_edge_app
from edge.config import EdgeConfig
from fragments.slots import load_slots
from fragments.topics import ALL_TOPICS
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.events.aggregator import Aggregator
from origin.events.counters import EventCounters
from origin.settings import Settings
from origin.web.app import create_app
from shelfedge.localstack import KafkaBroker, RedisServer, ensure_topics, free_port
from tests.support.origin_server import OriginServer
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS

EDITOR_TOKEN = "browser-editor-token-0123456789"
VIEWER_TOKEN = "browser-viewer-token-0123456789"
SECRET = "browser-test-segment-secret-0123456789"
CATALOG_SKUS = 300
AGGREGATOR_SESSION_TIMEOUT_MS = 3000
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


@dataclass(frozen=True, slots=True)
class Stack:
    """A running stack: where to point the browser, and its Redis (for assertions)."""

    origin_url: str
    """The origin, which serves the admin UI."""
    edge_url: str
    """The local edge, in front of the origin: the storefront for shoppers."""
    redis: Redis
    aggregator: Aggregator
    redis_url: str = ""
    kafka_bootstrap: str = ""
    editor_token: str = EDITOR_TOKEN


def _two_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


@asynccontextmanager
async def running_stack() -> AsyncIterator[Stack]:
    with ExitStack() as services:
        redis_server = services.enter_context(RedisServer())
        broker = services.enter_context(KafkaBroker())
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        redis = Redis.from_url(redis_server.url)
        try:
            await seed_demo(Store(redis, 10.0), load_slots(), 42, CATALOG_SKUS)
            origin_port, edge_port = _two_ports()
            edge_url = f"http://127.0.0.1:{edge_port}"
            settings = Settings(
                redis_url=redis_server.url,
                redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS,
                kafka_bootstrap=broker.bootstrap,
                segment_secret=SECRET,
                origin_port=origin_port,
                edge_port=edge_port,
                public_edge_url=edge_url,
                admin_tokens={EDITOR_TOKEN: "editor", VIEWER_TOKEN: "viewer"},
                admin_token_names={EDITOR_TOKEN: "maria", VIEWER_TOKEN: "victor"},
                events_rate=500.0,
                events_burst=1000,
            )
            origin = services.enter_context(
                OriginServer(create_app(settings), port=origin_port).start()
            )
            edge_config = replace(EdgeConfig.from_slots(load_slots(), SECRET), debug_headers=True)
            edge = services.enter_context(
                OriginServer(
                    create_edge_app(edge_config, origin.url, follow_experiments=True),
                    port=edge_port,
                ).start()
            )
            async with _aggregating(broker.bootstrap, redis) as aggregator:
                yield Stack(
                    origin.url, edge.url, redis, aggregator, redis_server.url, broker.bootstrap
                )
        finally:
            await redis.aclose()


@asynccontextmanager
async def _aggregating(bootstrap: str, redis: Redis) -> AsyncIterator[Aggregator]:
    aggregator = Aggregator(
        bootstrap,
        "browser-test-aggregator",
        EventCounters(redis),
        session_timeout_ms=AGGREGATOR_SESSION_TIMEOUT_MS,
    )
    await aggregator.start()
    stop = asyncio.Event()
    task = asyncio.create_task(aggregator.run(stop), name="browser-test-aggregator")
    try:
        yield aggregator
    finally:
        stop.set()
        await task
        await aggregator.stop()


def chromium_path() -> str:
    """Debian's Chromium binary; an error saying how to install it when it is missing."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} not found: install Debian's browser with 'apt-get install -y chromium' "
            "(Playwright's own browser download does not work offline)"
        )
    return str(CHROMIUM)


async def chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless, through Playwright."""
    return await playwright.chromium.launch(
        executable_path=chromium_path(), headless=True, args=list(CHROMIUM_ARGS)
    )
