"""Translate redis-py failures into `StoreUnavailable`, bounded by a deadline.

Every Redis call on a request path goes through `bounded`: it either returns within the
timeout or raises StoreUnavailable (never hangs), with the redis exception chained.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from origin.errors import StoreUnavailable

_T = TypeVar("_T")


async def bounded(call: Awaitable[_T], seconds: float, what: str) -> _T:
    """Await a Redis call with a deadline; failures become StoreUnavailable."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"redis unavailable during {what}: {exc}") from exc
    except TimeoutError as exc:
        raise StoreUnavailable(f"redis did not answer within {seconds:.3f}s during {what}") from exc
