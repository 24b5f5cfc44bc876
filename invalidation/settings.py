"""The invalidation consumer's settings (``shelfedge consume`` and the invalidation commands),
read once from the environment at start-up.

A bad value stops the process with a message naming the variable and what is expected. The
parsers are `origin.core.env`'s; the origin's own settings are `origin.settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from invalidation.ratelimit import CLOUDFLARE_PLANS as CLOUDFLARE_PLAN_BUCKETS
from origin.core.env import (
    env_bootstrap,
    env_choice,
    env_int,
    env_need,
    env_positive_float,
    env_purgers,
    env_redis_url,
    env_url,
)

CLOUDFLARE_PLANS = tuple(CLOUDFLARE_PLAN_BUCKETS)
"""The plan names SHELFEDGE_CLOUDFLARE_PLAN accepts: those whose purge limits are known."""
CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4"
FASTLY_API_BASE = "https://api.fastly.com"

DEFAULT_MAX_IN_FLIGHT = 60_000
"""Records an invalidation consumer holds fetched but not committed: its fetch buffer, the window
being applied and the window being propagated, a third each at most. Under a backlog a window
fills to its third, and larger windows coalesce more (per-SKU and per-bundle work is shared by
every event of the window), so it sets catch-up speed; memory is about 0.5 KB per record."""


@dataclass(frozen=True, slots=True)
class CloudflareSettings:
    zone_id: str
    api_token: str
    plan: str = "free"
    api_base: str = CLOUDFLARE_API_BASE
    rate_per_second: float | None = None
    """Overrides the plan's refill rate (requests/second)."""
    bucket_size: int | None = None
    """Overrides the plan's burst size."""


@dataclass(frozen=True, slots=True)
class FastlySettings:
    service_id: str
    api_token: str
    soft_purge: bool = True
    api_base: str = FASTLY_API_BASE


@dataclass(frozen=True, slots=True)
class InvalidationSettings:
    """Everything the invalidation consumer and its purge workers read."""

    redis_url: str | None = None
    kafka_bootstrap: str | None = None
    redis_timeout_ms: int = 250
    """Connect timeout to Redis; the consumer's calls are bounded as a whole per window."""
    redis_min_replicas: int = 0
    """Before committing a window's offsets, wait until its writes are on this many replicas of
    each master (`origin.core.redis_replication`): a failover then cannot lose what was
    committed. 0 = do not wait (a single Redis, or replicas you do not rely on)."""
    redis_outage_retry_s: float = 0.0
    """How long the consumer retries a window while Redis is unavailable (a failover) before
    it gives up and exits; 0 = give up at the first failure (the supervisor restarts it)."""
    coalesce_ms: int = 100
    """Invalidation coalescing window."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Backpressure: events fetched but not yet committed (a window: a third)."""
    consumer_group: str = "shelfedge-invalidation"
    consumer_session_timeout_ms: int = 10_000
    """Kafka group session timeout: how long a dead consumer holds its partitions."""
    consumer_metrics_port: int = 8601
    """Prometheus metrics of the invalidation consumer (0 = off)."""
    purgers: tuple[str, ...] = ("local-edge",)
    local_edge_url: str = "http://127.0.0.1:8700"
    varnish_url: str | None = None
    cloudflare: CloudflareSettings | None = None
    fastly: FastlySettings | None = None
    catalog_seed: int = 42
    """The demo catalog the ``events`` command generates events for."""
    catalog_skus: int = 5000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InvalidationSettings:
        """Read and validate; raise SettingsError naming the first bad variable."""
        e = os.environ if environ is None else environ
        purgers = env_purgers(e)
        edge_port = env_int(e, "SHELFEDGE_EDGE_PORT", 8700, 1, 65535)
        return cls(
            redis_url=env_redis_url(e),
            kafka_bootstrap=env_bootstrap(e),
            redis_timeout_ms=env_int(e, "SHELFEDGE_REDIS_TIMEOUT_MS", 250, 10, 60_000),
            redis_min_replicas=env_int(e, "SHELFEDGE_REDIS_MIN_REPLICAS", 0, 0, 16),
            redis_outage_retry_s=env_int(e, "SHELFEDGE_REDIS_OUTAGE_RETRY_MS", 0, 0, 600_000)
            / 1000,
            coalesce_ms=env_int(e, "SHELFEDGE_COALESCE_MS", 100, 0, 60_000),
            max_in_flight=env_int(
                e, "SHELFEDGE_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, 1, 1_000_000
            ),
            consumer_group=e.get("SHELFEDGE_CONSUMER_GROUP", "shelfedge-invalidation"),
            consumer_session_timeout_ms=env_int(
                e, "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS", 10_000, 1_000, 300_000
            ),
            consumer_metrics_port=env_int(e, "SHELFEDGE_CONSUMER_METRICS_PORT", 8601, 0, 65535),
            purgers=purgers,
            local_edge_url=env_url(e, "SHELFEDGE_LOCAL_EDGE_URL", ("http", "https"))
            or f"http://127.0.0.1:{edge_port}",
            varnish_url=env_need(e, "SHELFEDGE_VARNISH_URL")
            and env_url(e, "SHELFEDGE_VARNISH_URL", ("http", "https"))
            if "varnish" in purgers
            else None,
            cloudflare=_cloudflare(e) if "cloudflare" in purgers else None,
            fastly=_fastly(e) if "fastly" in purgers else None,
            catalog_seed=env_int(e, "SHELFEDGE_CATALOG_SEED", 42, 0, 2**31),
            catalog_skus=env_int(e, "SHELFEDGE_CATALOG_SKUS", 5000, 10, 1_000_000),
        )


def _cloudflare(e: Mapping[str, str]) -> CloudflareSettings:
    bucket = e.get("SHELFEDGE_CLOUDFLARE_BUCKET")
    return CloudflareSettings(
        zone_id=env_need(e, "SHELFEDGE_CLOUDFLARE_ZONE_ID"),
        api_token=env_need(e, "SHELFEDGE_CLOUDFLARE_API_TOKEN"),
        plan=env_choice(e, "SHELFEDGE_CLOUDFLARE_PLAN", CLOUDFLARE_PLANS, "free"),
        api_base=env_url(e, "SHELFEDGE_CLOUDFLARE_API_BASE", ("http", "https"))
        or CLOUDFLARE_API_BASE,
        rate_per_second=env_positive_float(e, "SHELFEDGE_CLOUDFLARE_RATE"),
        bucket_size=None
        if not bucket
        else env_int(e, "SHELFEDGE_CLOUDFLARE_BUCKET", 1, 1, 100_000),
    )


def _fastly(e: Mapping[str, str]) -> FastlySettings:
    return FastlySettings(
        service_id=env_need(e, "SHELFEDGE_FASTLY_SERVICE_ID"),
        api_token=env_need(e, "SHELFEDGE_FASTLY_API_TOKEN"),
        soft_purge=env_choice(e, "SHELFEDGE_FASTLY_SOFT_PURGE", ("true", "false"), "true")
        == "true",
        api_base=env_url(e, "SHELFEDGE_FASTLY_API_BASE", ("http", "https")) or FASTLY_API_BASE,
    )
