"""Translate redis-py failures into `StoreUnavailable`, bounded by a deadline.

Every Redis call on a request path goes through `bounded`: it either returns within the
timeout or raises StoreUnavailable (never hangs), with the redis exception chained. On a Redis
Cluster the transient states of a failover count as unavailable too: CLUSTERDOWN / MASTERDOWN
(`ClusterDownError`), TRYAGAIN during a resharding, and a slot no reachable node serves
(`SlotNotCoveredError`, when the client ran out of retries while a replica was being promoted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import ClusterDownError, SlotNotCoveredError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from origin.errors import StoreUnavailable

_T = TypeVar("_T")

UNAVAILABLE: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
    OSError,
)
"""The redis-py failures that mean "Redis cannot answer now" (retriable), not a bad call."""


async def bounded(call: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await a Redis call with a deadline; failures become StoreUnavailable."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except UNAVAILABLE as exc:
        raise StoreUnavailable(f"redis unavailable during {what}: {exc}") from exc
    except TimeoutError as exc:
        raise StoreUnavailable(f"redis did not answer within {seconds:.3f}s during {what}") from exc
