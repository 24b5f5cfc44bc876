"""The edge cache's state machine, over each entry's metadata (pure; the adapter stores bytes).

For an entry stored at ``stored_at`` with policy (max-age, stale-while-revalidate, stale-if-error)
and the current time ``now`` (age = now - stored_at):

    FRESH    age < max-age                        serve it
    STALE    max-age <= age < max-age + swr       serve it, revalidate in the background
    EXPIRED  otherwise (or no entry: MISS)        fetch from the origin (If-None-Match when we
                                                  have an ETag); if that fails, serve the entry
                                                  while age < max-age + sie, else fall back

`RevalidationTracker` allows at most one background revalidation per key per isolate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fragments.bundle import Bundle, decode_bundle

REVALIDATION_LOCK_SECONDS = 30.0
"""A revalidation not finished after this long is considered lost (its key is retried)."""


class Freshness(enum.Enum):
    FRESH = "fresh"
    STALE = "stale"
    EXPIRED = "expired"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached bundle and when it was stored."""

    bundle: Bundle
    stored_at: float
    """Unix seconds the edge stored (or last revalidated) it."""

    @property
    def etag(self) -> str:
        return self.bundle.etag

    def age(self, now: float) -> float:
        return max(0.0, now - self.stored_at)

    def refreshed(self, now: float) -> CacheEntry:
        """The same content, revalidated now (an origin 304)."""
        return CacheEntry(self.bundle, now)

    def marked_stale(self, now: float) -> CacheEntry:
        """The same content, aged to at least max-age now (a soft purge): no longer FRESH, but
        served while revalidated and within stale-if-error as before."""
        return CacheEntry(self.bundle, min(self.stored_at, now - self.bundle.policy.max_age))

    def within_stale_if_error(self, now: float) -> bool:
        p = self.bundle.policy
        return self.age(now) < p.max_age + max(p.stale_if_error, p.stale_while_revalidate)


def classify(entry: CacheEntry | None, now: float) -> Freshness:
    if entry is None:
        return Freshness.MISSING
    age = entry.age(now)
    policy = entry.bundle.policy
    if age < policy.max_age:
        return Freshness.FRESH
    if age < policy.max_age + policy.stale_while_revalidate:
        return Freshness.STALE
    return Freshness.EXPIRED


def entry_from_bytes(body: bytes | str, stored_at: float) -> CacheEntry:
    """Decode stored bundle bytes (raises BundleFormatError)."""
    return CacheEntry(decode_bundle(body), stored_at)


@dataclass(slots=True)
class RevalidationTracker:
    """Which keys have a background revalidation in flight in this isolate."""

    in_flight: dict[str, float] = field(default_factory=dict)

    def try_begin(self, cache_key: str, now: float) -> bool:
        """True if the caller should revalidate `cache_key` now (and must call `end`)."""
        started = self.in_flight.get(cache_key)
        if started is not None and now - started < REVALIDATION_LOCK_SECONDS:
            return False
        self.in_flight[cache_key] = now
        return True

    def end(self, cache_key: str) -> None:
        self.in_flight.pop(cache_key, None)
