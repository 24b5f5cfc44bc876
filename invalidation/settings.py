"""The invalidation consumer's settings (``shelfedge consume`` and the invalidation commands),
read once from the environment at start-up.

A bad value stops the process with a message naming the variable and what is expected. The
parsers are `origin.core.env`'s; the origin's own settings are `origin.settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from invalidation.ratelimit import CLOUDFLARE_PLANS as CLOUDFLARE_PLAN_BUCKETS
from invalidation.window_policy import DEFAULT_WINDOW_MS
from origin.core.env import (
    env_bootstrap,
    env_choice,
    env_int,
    env_need,
    env_positive_float,
    env_purgers,
    env_redis_url,
    env_url,
    redacted_repr,
)
from origin.core.kafka_security import KafkaSecurity, env_kafka_security

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
    api_token: str = field(repr=False)
    plan: str = "free"
    api_base: str = CLOUDFLARE_API_BASE
    rate_per_second: float | None = None
    """Overrides the plan's refill rate (requests/second)."""
    bucket_size: int | None = None
    """Overrides the plan's burst size."""
    soft_purge: bool = True
    """Soft purges go to ``invalidate_cache`` (mark stale); False sends every purge hard."""


@dataclass(frozen=True, slots=True)
class FastlySettings:
    service_id: str
    api_token: str = field(repr=False)
    soft_purge: bool = True
    api_base: str = FASTLY_API_BASE


AKAMAI_NETWORKS = ("production", "staging")


@dataclass(frozen=True, slots=True)
class AkamaiSettings:
    """Fast Purge v3 by cache tag, authenticated with an EdgeGrid API client's credentials."""

    host: str
    """The API client's host, ``akab-....luna.akamaiapis.net`` (an http(s) URL for tests)."""
    client_token: str = field(repr=False)
    client_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    network: str = "production"
    """``production`` or ``staging``: which network's caches are purged."""
    soft_purge: bool = True
    """Soft purges use ``invalidate`` (mark stale); False sends every purge as ``delete``."""

    @property
    def base_url(self) -> str:
        """``https://<host>``, or the host itself when it is already a URL (a local test API)."""
        return self.host if "://" in self.host else f"https://{self.host}"


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
    coalesce_ms: int = DEFAULT_WINDOW_MS
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
    local_edge_purge_token: str | None = field(default=None, repr=False)
    """Sent as a Bearer token to the local edge's ``/se/purge`` (SHELFEDGE_EDGE_PURGE_TOKEN)."""
    varnish_url: str | None = None
    varnish_soft_purge: bool = True
    """Soft purges send ``xkey-softpurge``; False sends every purge as ``xkey-purge``."""
    cloudflare: CloudflareSettings | None = None
    fastly: FastlySettings | None = None
    akamai: AkamaiSettings | None = None
    catalog_seed: int = 42
    """The demo catalog the ``events`` command generates events for."""
    catalog_skus: int = 5000
    env: str = "dev"
    """``SHELFEDGE_ENV``: outside ``dev`` the CDN purge API bases must be ``https://`` (their
    requests carry API tokens)."""
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)

    def __repr__(self) -> str:
        """Field values with API tokens hidden and passwords removed from URLs."""
        return redacted_repr(self, hidden=frozenset())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InvalidationSettings:
        """Read and validate; raise SettingsError naming the first bad variable."""
        e = os.environ if environ is None else environ
        env = env_choice(e, "SHELFEDGE_ENV", ("dev", "staging", "prod"), "dev")
        purgers = env_purgers(e)
        edge_port = env_int(e, "SHELFEDGE_EDGE_PORT", 8700, 1, 65535)
        return cls(
            redis_url=env_redis_url(e),
            kafka_bootstrap=env_bootstrap(e),
            redis_timeout_ms=env_int(e, "SHELFEDGE_REDIS_TIMEOUT_MS", 250, 10, 60_000),
            redis_min_replicas=env_int(e, "SHELFEDGE_REDIS_MIN_REPLICAS", 0, 0, 16),
            redis_outage_retry_s=env_int(e, "SHELFEDGE_REDIS_OUTAGE_RETRY_MS", 0, 0, 600_000)
            / 1000,
            coalesce_ms=env_int(e, "SHELFEDGE_COALESCE_MS", DEFAULT_WINDOW_MS, 1, 60_000),
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
            local_edge_purge_token=e.get("SHELFEDGE_EDGE_PURGE_TOKEN") or None,
            varnish_url=env_need(e, "SHELFEDGE_VARNISH_URL")
            and env_url(e, "SHELFEDGE_VARNISH_URL", ("http", "https"))
            if "varnish" in purgers
            else None,
            varnish_soft_purge=_flag(e, "SHELFEDGE_VARNISH_SOFT_PURGE"),
            cloudflare=_cloudflare(e, env) if "cloudflare" in purgers else None,
            fastly=_fastly(e, env) if "fastly" in purgers else None,
            akamai=_akamai(e) if "akamai" in purgers else None,
            catalog_seed=env_int(e, "SHELFEDGE_CATALOG_SEED", 42, 0, 2**31),
            catalog_skus=env_int(e, "SHELFEDGE_CATALOG_SKUS", 5000, 10, 1_000_000),
            env=env,
            kafka_security=env_kafka_security(e),
        )


def _api_base(e: Mapping[str, str], name: str, env: str) -> str | None:
    """A purge API base: http or https in dev, https only elsewhere (it carries a token)."""
    schemes = ("http", "https") if env == "dev" else ("https",)
    return env_url(e, name, schemes)


def _cloudflare(e: Mapping[str, str], env: str) -> CloudflareSettings:
    bucket = e.get("SHELFEDGE_CLOUDFLARE_BUCKET")
    return CloudflareSettings(
        zone_id=env_need(e, "SHELFEDGE_CLOUDFLARE_ZONE_ID"),
        api_token=env_need(e, "SHELFEDGE_CLOUDFLARE_API_TOKEN"),
        plan=env_choice(e, "SHELFEDGE_CLOUDFLARE_PLAN", CLOUDFLARE_PLANS, "free"),
        api_base=_api_base(e, "SHELFEDGE_CLOUDFLARE_API_BASE", env) or CLOUDFLARE_API_BASE,
        rate_per_second=env_positive_float(e, "SHELFEDGE_CLOUDFLARE_RATE"),
        bucket_size=None
        if not bucket
        else env_int(e, "SHELFEDGE_CLOUDFLARE_BUCKET", 1, 1, 100_000),
        soft_purge=_flag(e, "SHELFEDGE_CLOUDFLARE_SOFT_PURGE"),
    )


def _fastly(e: Mapping[str, str], env: str) -> FastlySettings:
    return FastlySettings(
        service_id=env_need(e, "SHELFEDGE_FASTLY_SERVICE_ID"),
        api_token=env_need(e, "SHELFEDGE_FASTLY_API_TOKEN"),
        soft_purge=_flag(e, "SHELFEDGE_FASTLY_SOFT_PURGE"),
        api_base=_api_base(e, "SHELFEDGE_FASTLY_API_BASE", env) or FASTLY_API_BASE,
    )


def _akamai(e: Mapping[str, str]) -> AkamaiSettings:
    return AkamaiSettings(
        host=env_need(e, "SHELFEDGE_AKAMAI_HOST"),
        client_token=env_need(e, "SHELFEDGE_AKAMAI_CLIENT_TOKEN"),
        client_secret=env_need(e, "SHELFEDGE_AKAMAI_CLIENT_SECRET"),
        access_token=env_need(e, "SHELFEDGE_AKAMAI_ACCESS_TOKEN"),
        network=env_choice(e, "SHELFEDGE_AKAMAI_NETWORK", AKAMAI_NETWORKS, "production"),
        soft_purge=_flag(e, "SHELFEDGE_AKAMAI_SOFT_PURGE"),
    )


def _flag(e: Mapping[str, str], name: str, default: bool = True) -> bool:
    """A ``true``/``false`` variable."""
    return env_choice(e, name, ("true", "false"), "true" if default else "false") == "true"
