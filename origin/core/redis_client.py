"""The one way shelfedge makes a Redis client: pooled, bounded, hiredis-packed.

Every process kind (the origin, the invalidation consumer, the aggregator, the commands) calls
`redis_client`; none builds a client of its own, so timeouts, retries and packing are the same
everywhere. It performs no I/O until the client is used.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from origin.core.redis_packing import with_hiredis_packing


def redis_client(url: str, *, timeout_ms: int, per_reply_timeout: bool = True) -> Redis:
    """A pooled client; on request paths every socket read is also bounded by ``timeout_ms``.

    Batch workers (the invalidation consumer) pass ``per_reply_timeout=False``: their calls are
    bounded as a whole by `origin.core.redis_errors.bounded`, and a per-reply timer costs
    measurable time on pipelines of thousands of replies.
    """
    timeout = timeout_ms / 1000
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
        max_connections=256,
    )
    pool = client.connection_pool
    pool.connection_class = with_hiredis_packing(pool.connection_class)
    return client
