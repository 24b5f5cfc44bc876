"""Token buckets and a purger's budget over them, pure: the caller passes the clock in.

Cloudflare's purge API limits requests per plan with a bucket of a given size refilled at a given
rate; `CLOUDFLARE_PLANS` records the documented numbers (configurable per deployment). Akamai's
Fast Purge limits both requests and the cache tags they carry (`AKAMAI_REQUESTS`,
`AKAMAI_TAGS`): a request takes one request token and one tag token per tag, so a
`PurgeBudget` holds up to two buckets and says how many tags the next request may carry.
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


AKAMAI_REQUESTS = BucketSpec(rate=50.0, capacity=100)
"""Fast Purge v3: 100 requests, refilling 50 per second (account-wide)."""
AKAMAI_TAGS = BucketSpec(rate=500 / 60, capacity=5000)
"""Fast Purge v3 by cache tag: 5,000 tags, refilling 500 per minute (account-wide)."""


class TokenBucket:
    """Starts full; `take` spends tokens if available."""

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

    def wait_time(self, now: float, tokens: int = 1) -> float:
        """Seconds until `tokens` are available (0 if they are now)."""
        self._refill(now)
        missing = tokens - self._tokens
        return 0.0 if missing <= 0 else missing / self.spec.rate

    def available(self, now: float) -> int:
        """Whole tokens available now."""
        self._refill(now)
        return int(self._tokens)

    def take(self, now: float, tokens: int = 1) -> bool:
        """Spend `tokens` if that many are available; False (nothing spent) otherwise."""
        self._refill(now)
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False


@dataclass(frozen=True, slots=True)
class PurgeBudget:
    """A purger's rate limits: a bucket of requests, of tags, or both (None: unlimited).

    A request spends one request token and one tag token per tag it carries; a request is
    never sent on credit, so the API's own buckets (the same numbers) are not overrun.
    """

    requests: TokenBucket | None = None
    tags: TokenBucket | None = None

    def affordable(self, now: float, wanted: int) -> int:
        """How many of `wanted` tags the next request may carry now (0: wait first)."""
        if self.requests is not None and self.requests.available(now) < 1:
            return 0
        if self.tags is None:
            return wanted
        return min(wanted, self.tags.available(now))

    def wait_time(self, now: float) -> float:
        """Seconds until a request of one tag is affordable (0 if it is now)."""
        waits = [b.wait_time(now) for b in (self.requests, self.tags) if b is not None]
        return max(waits, default=0.0)

    def spend(self, now: float, tags: int) -> None:
        """Spend one request and `tags` tag tokens; ValueError if they are not affordable
        (the caller asks `affordable` first)."""
        if self.affordable(now, tags) < tags:
            raise ValueError(f"purge budget cannot afford a request of {tags} tags now")
        if self.requests is not None:
            self.requests.take(now)
        if self.tags is not None:
            self.tags.take(now, tags)
