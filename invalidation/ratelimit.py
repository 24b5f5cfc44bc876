"""A token bucket, pure: the caller passes the clock in.

Cloudflare's purge API limits requests per plan with a bucket of a given size refilled at a given
rate; `CLOUDFLARE_PLANS` records the documented numbers (configurable per deployment).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """Refill rate (tokens per second) and capacity (burst)."""

    rate: float
    capacity: int


CLOUDFLARE_PLANS: dict[str, BucketSpec] = {
    "free": BucketSpec(rate=5 / 60, capacity=25),
    "pro": BucketSpec(rate=5.0, capacity=25),
    "business": BucketSpec(rate=10.0, capacity=50),
    "enterprise": BucketSpec(rate=50.0, capacity=500),
}


class TokenBucket:
    """Starts full; `take` spends one token if available."""

    def __init__(self, spec: BucketSpec, now: float) -> None:
        if spec.rate <= 0 or spec.capacity < 1:
            raise ValueError(f"invalid bucket {spec}: rate must be > 0 and capacity >= 1")
        self.spec = spec
        self._tokens = float(spec.capacity)
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.spec.capacity, self._tokens + (now - self._at) * self.spec.rate)
            self._at = now

    def wait_time(self, now: float) -> float:
        """Seconds until a token is available (0 if one is now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.spec.rate

    def take(self, now: float) -> bool:
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False
