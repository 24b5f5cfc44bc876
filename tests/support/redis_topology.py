"""The Redis topologies every Redis-backed test runs on, and clients for either.

`TOPOLOGIES` parametrises `redis_url` / `redis_client` (tests/conftest.py): `single` is the
session's `redis-server`, `cluster` the session's six-node Redis Cluster, named by a
`redis+cluster://` URL (origin.core.redis_url). `connect` / `connect_sync` give a test a
client of the right kind for a URL, as generous in timeouts as tests need. Test support only.
"""

from __future__ import annotations

from typing import TypeAlias

import redis
import redis.cluster

from origin.core.redis_client import RedisLike, redis_client
from origin.core.redis_url import cluster_target, is_cluster_url
from shelfedge.localstack import RedisCluster

SINGLE = "single"
CLUSTER = "cluster"
TOPOLOGIES = (SINGLE, CLUSTER)

TEST_TIMEOUT_MS = 10_000

ORIGIN_TEST_TIMEOUT_MS = 2_000
"""The origin's request-path Redis timeout in tests whose subject is not that timeout.

Production's default (250 ms) is a latency budget; on a shared two-core test machine running
six cluster nodes and a JVM broker beside the suite, one reply now and then takes longer, and
the origin rightly answers 503. Tests of the 503 itself (tests/origin/test_redis_outage.py,
the cluster failover test) set their own, short, timeout."""

SyncRedisLike: TypeAlias = redis.Redis | redis.cluster.RedisCluster


def cluster_url(cluster: RedisCluster) -> str:
    """`redis+cluster://` with every node of `cluster` as a seed."""
    return cluster.url


def connect(url: str) -> RedisLike:
    """An asyncio client for `url` (either topology), made by the production factory."""
    return redis_client(url, timeout_ms=TEST_TIMEOUT_MS, per_reply_timeout=False)


def connect_sync(url: str) -> SyncRedisLike:
    """A synchronous client for `url` (for code that runs in a server thread)."""
    if not is_cluster_url(url):
        return redis.Redis.from_url(url)
    target = cluster_target(url)
    return redis.cluster.RedisCluster.from_url(
        target.node_url,
        startup_nodes=[
            redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
            for h, p in target.seeds
        ],
    )
