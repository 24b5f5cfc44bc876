"""Fixtures of the invalidation tests: a seeded catalog in the real Redis, the fake purge API.

Redis and the broker come from `tests/conftest.py` (real redis-server; real brokers: each test
that consumes from Kafka uses `fresh_kafka_broker` and runs on Tansu and on Apache Kafka, with
topics of its own, so no test reads another's events).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from origin.core.redis_client import RedisLike
from tests.invalidation.consume_process import ConsumeProcess, stop_all
from tests.invalidation.support import (
    Snapshot,
    World,
    restore_snapshot,
    seed_world,
    take_snapshot,
    world_on,
)
from tests.support.fake_purge_api import FakePurgeApi
from tests.support.redis_topology import connect


@pytest.fixture(scope="session")
async def seeded_snapshot(redis_url: str) -> Snapshot:
    """The seeded demo catalog (300 SKUs, every list and bundle built), dumped once."""
    client = connect(redis_url)
    try:
        await client.flushall()
        await seed_world(client)
        return await take_snapshot(client)
    finally:
        await client.flushall()
        await client.aclose()


@pytest.fixture
async def world(redis_client: RedisLike, seeded_snapshot: Snapshot) -> World:
    """The seeded demo catalog restored into the freshly flushed session Redis."""
    await restore_snapshot(redis_client, seeded_snapshot)
    return world_on(redis_client)


@pytest.fixture
def fake_purge_api() -> Iterator[FakePurgeApi]:
    """The fake Cloudflare / Fastly / local-edge purge API on a loopback port."""
    with FakePurgeApi() as api:
        yield api


@pytest.fixture
def processes() -> Iterator[list[ConsumeProcess]]:
    """Every `shelfedge consume` process the test starts; any still running is killed at the
    end."""
    started: list[ConsumeProcess] = []
    yield started
    stop_all(started)
