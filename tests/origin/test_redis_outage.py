"""Redis down or hung: the origin answers 503 + Retry-After within its deadline, never hangs.

Each test runs its own redis-server (`fresh_redis_server`) so the outage stays in the test.
The deadline is SHELFEDGE_REDIS_TIMEOUT_MS (`Settings.redis_timeout_ms`); an answer must come
within about twice that.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import pytest
from redis.asyncio import Redis

from fragments.slots import load_slots
from origin.core.seed import seed_demo
from origin.core.store import Store
from origin.settings import Settings
from origin.web.app import create_app
from shelfedge.localstack import RedisServer

TIMEOUT_MS = 200
DEADLINE_S = 2 * TIMEOUT_MS / 1000
PATHS = (
    "/v1/bundles/home-hero?segment=everyone",
    "/v1/fragments/home-hero?segment=everyone",
    "/v1/bundles/home-hero?segment=nobody",  # the cold "which part is unknown?" path
    "/v1/products/SKU-00001",
    "/readyz",
)


@asynccontextmanager
async def serving(server: RedisServer) -> AsyncIterator[httpx.AsyncClient]:
    """A seeded origin on `server`, with a client speaking to it in-process."""
    seeder = Redis.from_url(server.url)
    try:
        await seed_demo(Store(seeder, 5.0), load_slots(), 42, 60)
    finally:
        await seeder.aclose()
    app = create_app(Settings(redis_url=server.url, redis_timeout_ms=TIMEOUT_MS))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://origin.test") as client:
            for path in PATHS:  # warm the pool: the outage hits established connections
                assert (await client.get(path)).status_code in (200, 404)
            yield client


@contextmanager
def paused(server: RedisServer) -> Iterator[None]:
    """SIGSTOP the redis-server (it keeps its sockets open but never answers), then resume it."""
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def _assert_fast_503(client: httpx.AsyncClient, path: str, port: int) -> None:
    started = time.perf_counter()
    response = await client.get(path, timeout=10.0)
    elapsed = time.perf_counter() - started

    assert response.status_code == 503, (path, response.status_code, response.text)
    assert elapsed < DEADLINE_S, f"{path} took {elapsed:.3f}s (deadline {DEADLINE_S}s)"
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert "redis" in response.json()["detail"]
    assert str(port) not in response.text  # the internal address stays in the operator's log


@pytest.mark.parametrize("path", PATHS)
async def test_stopped_redis_is_a_fast_503(fresh_redis_server: RedisServer, path: str) -> None:
    async with serving(fresh_redis_server) as client:
        fresh_redis_server.stop()

        await _assert_fast_503(client, path, fresh_redis_server.port)
        await _assert_fast_503(
            client, path, fresh_redis_server.port
        )  # and again, on a pool with no live connection


@pytest.mark.parametrize("path", PATHS)
async def test_hung_redis_is_a_503_within_the_deadline(
    fresh_redis_server: RedisServer, path: str
) -> None:
    async with serving(fresh_redis_server) as client:
        with paused(fresh_redis_server):
            await _assert_fast_503(client, path, fresh_redis_server.port)


async def test_the_origin_recovers_when_redis_comes_back(fresh_redis_server: RedisServer) -> None:
    async with serving(fresh_redis_server) as client:
        fresh_redis_server.stop()
        await _assert_fast_503(client, "/readyz", fresh_redis_server.port)
        fresh_redis_server.start()  # same port, empty (memory only): reseed
        seeder = Redis.from_url(fresh_redis_server.url)
        try:
            await seed_demo(Store(seeder, 5.0), load_slots(), 42, 60)
        finally:
            await seeder.aclose()

        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get(PATHS[0])).status_code == 200


async def test_healthz_does_not_depend_on_redis(fresh_redis_server: RedisServer) -> None:
    async with serving(fresh_redis_server) as client:
        fresh_redis_server.stop()
        response = await client.get("/healthz")
    assert response.status_code == 200
