"""Fixtures of the experiment tests: a seeded catalog in the suite's Redis, an origin with
admin tokens on a loopback port, and HTTP clients for editors and viewers.

Redis is the suite's real redis-server (flushed before each test by `redis_client`); the origin
is the real app under uvicorn (`tests.support.origin_server`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from origin.core.redis_client import RedisLike
from tests.origin.experiments.support import origin_settings, seeded
from tests.support.origin_server import OriginServer


@pytest.fixture(scope="module")
def origin(redis_url: str) -> Iterator[OriginServer]:
    with OriginServer.for_origin(origin_settings(redis_url)) as server:
        yield server


@pytest.fixture
async def api(origin: OriginServer, seeded: RedisLike) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client of the origin (send `EDITOR` / `VIEWER` headers to authenticate)."""
    async with httpx.AsyncClient(base_url=origin.url, timeout=30.0) as client:
        yield client


__all__ = ["api", "origin", "seeded"]
