"""The one way shelfedge makes a Redis client: pooled, bounded, hiredis-packed.

Every process kind (the origin, the invalidation consumer, the aggregator, the commands) calls
`redis_client`; none builds a client of its own, so timeouts, retries and packing are the same
everywhere. The URL chooses the topology (`origin.core.redis_url`): `redis://` / `rediss://` /
`unix://` give `redis.asyncio.Redis` on one node; `redis+cluster://` / `rediss+cluster://` give
`redis.asyncio.cluster.RedisCluster`, which routes each command to the master owning its key's
hash slot and follows MOVED/ASK redirects and failovers. The code using either sees `RedisLike`:
every multi-key call shelfedge makes keeps its keys in one hash slot (`origin.core.keys`), so
the same calls work on both. It performs no I/O until the client is used.
"""

from __future__ import annotations

from typing import TypeAlias

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from origin.core.redis_packing import with_hiredis_packing
from origin.core.redis_url import cluster_target, is_cluster_url

RedisLike: TypeAlias = Redis | RedisCluster
"""A client on one node or on a cluster; code that takes one must stay single-slot per call."""

MAX_CONNECTIONS = 256
"""Per node: the single-node pool, or each cluster node's pool."""


def redis_client(url: str, *, timeout_ms: int, per_reply_timeout: bool = True) -> RedisLike:
    """A pooled client; on request paths every socket read is also bounded by ``timeout_ms``.

    Batch workers (the invalidation consumer) pass ``per_reply_timeout=False``: their calls are
    bounded as a whole by `origin.core.redis_errors.bounded`, and a per-reply timer costs
    measurable time on pipelines of thousands of replies.
    """
    timeout = timeout_ms / 1000
    if is_cluster_url(url):
        return _cluster_client(url, timeout, per_reply_timeout)
    client = Redis.from_url(
        url,
        socket_timeout=timeout if per_reply_timeout else None,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        retry_on_timeout=False,
        # One immediate retry on a dropped connection, so the first command after a Redis
        # restart reconnects instead of failing; every call stays bounded by its deadline.
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
        max_connections=MAX_CONNECTIONS,
    )
    pool = client.connection_pool
    pool.connection_class = with_hiredis_packing(pool.connection_class)
    return client


def _cluster_client(url: str, timeout: float, per_reply_timeout: bool) -> RedisCluster:
    target = cluster_target(url)
    client = RedisCluster.from_url(
        target.node_url,
        startup_nodes=[ClusterNode(host, port) for host, port in target.seeds],
        socket_timeout=timeout if per_reply_timeout else None,
        socket_connect_timeout=timeout,
        health_check_interval=0,
        # After a connection error or CLUSTERDOWN the client refreshes its slot map and tries
        # again, a few times with a short backoff: a failover shows as a few failed attempts,
        # then the promoted replica answers. Callers' deadlines (`bounded`) still cap each call.
        retry=Retry(ExponentialWithJitterBackoff(base=0.02, cap=0.25), 3),
        max_connections=MAX_CONNECTIONS,
    )
    # Connection classes live in the kwargs every node is made from (the seeds are made
    # already): give both the C packer, as the single-node pool has it.
    kwargs = client.connection_kwargs
    kwargs["connection_class"] = with_hiredis_packing(kwargs["connection_class"])
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = kwargs["connection_class"]
    return client
