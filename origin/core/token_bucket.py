"""A token bucket per client in RedisLike, shared by every origin process.

Each (scope, client) has one hash holding its tokens and the time they were counted; one Lua
script refills by elapsed time (RedisLike's own clock, so processes on different hosts agree),
takes a token when there is one and sets the key's expiry to the time a full refill takes, so
idle clients cost nothing. N processes share one limit rather than having N times it. It
never sleeps and never decides what a limit means for a response (the caller does).
"""

from __future__ import annotations

import math
from typing import Any

from origin.core import keys
from origin.core.redis_client import RedisLike
from origin.core.redis_errors import bounded

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
"""


class RedisTokenBucket:
    """`rate` tokens per second up to `burst`, per client key, for one `scope`."""

    def __init__(
        self, redis: RedisLike, scope: str, rate: float, burst: int, timeout: float = 0.25
    ) -> None:
        if not (0 < rate < math.inf) or burst < 1:
            raise ValueError(f"token bucket {scope!r}: need rate > 0 and burst >= 1")
        self.scope = scope
        self.rate = rate
        self.burst = burst
        self.timeout = timeout
        self._take: Any = redis.register_script(_TAKE)

    async def take(self, client: str) -> float:
        """0.0 when the request may pass (a token was taken), else seconds until one refills.
        Raises StoreUnavailable when RedisLike does not answer in time."""
        key = keys.rate_limit_key(self.scope, client)
        wait_ms = await bounded(
            self._take(keys=[key], args=[repr(self.rate), self.burst]), self.timeout, "rate limit"
        )
        return int(wait_ms) / 1000

    @staticmethod
    def retry_after(wait: float) -> int:
        """The Retry-After header value (whole seconds, at least 1)."""
        return max(1, math.ceil(wait))
