"""Fixtures of the origin tests: a seeded Redis and the origin app served in-process.

- `seeded_origin_store`: the session's redis-server, emptied and loaded once per test module
  with a small demo catalog (`SEEDED_SKUS` products, every segment, every bundle). Tests that
  use it must not flush Redis; tests that change the catalog use `redis_client` instead.
- `origin_app` / `origin_client`: `origin.web.app.create_app` over that Redis with its lifespan
  running, and an httpx client talking to it through `httpx.ASGITransport` (no socket).

Fixtures here are requested by name only (none is autouse), so other tests in this folder are
unaffected. They never stop the session's Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from fragments.slots import load_slots
from origin.core.seed import SeedReport, seed_demo
from origin.core.store import Store
from origin.settings import Settings
from origin.web.app import create_app
from tests.support.redis_topology import ORIGIN_TEST_TIMEOUT_MS, connect

SEEDED_SKUS = 300
SEEDED_SEED = 42


@pytest.fixture(scope="module")
async def seeded_origin_store(redis_url: str) -> AsyncIterator[tuple[Store, SeedReport]]:
    """The session's Redis with the small demo catalog and every bundle built from it."""
    client = connect(redis_url)
    try:
        await client.flushall()
        store = Store(client, 5.0)
        report = await seed_demo(store, load_slots(), SEEDED_SEED, SEEDED_SKUS)
        yield store, report
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
async def origin_app(
    redis_url: str, seeded_origin_store: tuple[Store, SeedReport]
) -> AsyncIterator[Starlette]:
    """The origin app on the seeded Redis, inside its lifespan."""
    app = create_app(Settings(redis_url=redis_url, redis_timeout_ms=ORIGIN_TEST_TIMEOUT_MS))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def origin_client(origin_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=origin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://origin.test") as client:
        yield client
