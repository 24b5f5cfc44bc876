"""Per-client token buckets for the event collector (in process, bounded memory).

Each client key (the peer IP) gets a bucket of `burst` tokens refilled at `rate` per second;
a request takes one. The least recently seen clients are forgotten beyond `max_clients` (a
forgotten client starts again with a full bucket). Several origin processes each keep their
own buckets: the effective limit is per process. Never blocks and never sleeps.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ClientRateLimiter:
    """Token bucket per client key."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError(f"need rate > 0, burst >= 1, max_clients >= 1; got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        """0.0 when the request may pass (a token is taken), else seconds until one refills."""
        now = self.clock()
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> int:
        """The Retry-After header value (whole seconds, at least 1)."""
        return max(1, math.ceil(wait))
