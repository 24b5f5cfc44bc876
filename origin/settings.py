"""The one typed settings object, read once from the environment at start-up.

Every variable is ``SHELFEDGE_*`` except the two conventional ones, ``REDIS_URL`` and
``KAFKA_BOOTSTRAP_SERVERS``. A bad value stops the process with a message naming the variable
and what is expected. Nothing else in shelfedge reads ``os.environ``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from fragments.segment_cookie import DEV_SEGMENT_SECRET
from origin.errors import SettingsError

PURGER_NAMES = ("local-edge", "varnish", "cloudflare", "fastly")
CLOUDFLARE_PLANS = ("free", "pro", "business", "enterprise")
CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4"
FASTLY_API_BASE = "https://api.fastly.com"
_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


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
class Settings:
    """Everything configurable in shelfedge."""

    redis_url: str | None = None
    """Redis to use; None means the dev supervisor starts its own."""
    kafka_bootstrap: str | None = None
    """Kafka bootstrap servers; None means the dev supervisor starts the Tansu broker."""
    env: str = "dev"
    """``dev`` or ``prod``; prod refuses development defaults (e.g. the dev segment secret)."""
    origin_host: str = "127.0.0.1"
    origin_port: int = 8600
    edge_port: int = 8700
    edge_origin_url: str = "http://127.0.0.1:8600"
    """Where the local edge fetches bundles from."""
    public_edge_url: str = "http://127.0.0.1:8700"
    """Where the storefront page includes slots from."""
    segment_secret: str = DEV_SEGMENT_SECRET
    """HMAC key of the signed segment cookie (shared by origin and edge)."""
    redis_timeout_ms: int = 250
    """Per-command Redis timeout on request paths; beyond it the origin answers 503."""
    coalesce_ms: int = 100
    """Invalidation coalescing window."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Invalidation backpressure: events fetched but not yet committed (a window: a third)."""
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
    catalog_skus: int = 5000
    admin_tokens: Mapping[str, str] = field(default_factory=dict)
    """Bearer token -> role (viewer, editor), from SHELFEDGE_ADMIN_TOKENS."""
    admin_token_names: Mapping[str, str] = field(default_factory=dict)
    """Bearer token -> the name audit entries record (``name=token:role``; default: a short
    fingerprint of the token, never the token)."""
    events_rate: float = 20.0
    """POST /v1/events: requests per second each client IP may sustain (token bucket)."""
    events_burst: int = 40
    """POST /v1/events: the bucket size (requests a client may send at once)."""
    aggregator_group: str = "shelfedge-aggregator"
    """Kafka consumer group of the exposure/conversion aggregator."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate; raise SettingsError naming the first bad variable."""
        e = os.environ if environ is None else environ
        env = _choice(e, "SHELFEDGE_ENV", ("dev", "prod"), "dev")
        secret = e.get("SHELFEDGE_SEGMENT_SECRET", DEV_SEGMENT_SECRET)
        if env == "prod" and secret == DEV_SEGMENT_SECRET:
            raise SettingsError("SHELFEDGE_SEGMENT_SECRET", "a secret of your own in prod", None)
        if len(secret) < 16:
            raise SettingsError("SHELFEDGE_SEGMENT_SECRET", "at least 16 characters", "<hidden>")
        purgers = _list(e, "SHELFEDGE_PURGERS", ("local-edge",))
        for name in purgers:
            if name not in PURGER_NAMES:
                raise SettingsError("SHELFEDGE_PURGERS", f"a comma list of {PURGER_NAMES}", name)
        origin_port = _int(e, "SHELFEDGE_ORIGIN_PORT", 8600, 1, 65535)
        edge_port = _int(e, "SHELFEDGE_EDGE_PORT", 8700, 1, 65535)
        tokens, names = _tokens(e)
        return cls(
            redis_url=_url(e, "REDIS_URL", ("redis", "rediss", "unix")),
            kafka_bootstrap=_bootstrap(e),
            env=env,
            origin_host=e.get("SHELFEDGE_ORIGIN_HOST", "127.0.0.1"),
            origin_port=origin_port,
            edge_port=edge_port,
            edge_origin_url=_url(e, "SHELFEDGE_EDGE_ORIGIN_URL", ("http", "https"))
            or f"http://127.0.0.1:{origin_port}",
            public_edge_url=_url(e, "SHELFEDGE_PUBLIC_EDGE_URL", ("http", "https"))
            or f"http://127.0.0.1:{edge_port}",
            segment_secret=secret,
            redis_timeout_ms=_int(e, "SHELFEDGE_REDIS_TIMEOUT_MS", 250, 10, 60_000),
            coalesce_ms=_int(e, "SHELFEDGE_COALESCE_MS", 100, 0, 60_000),
            max_in_flight=_int(e, "SHELFEDGE_MAX_IN_FLIGHT", DEFAULT_MAX_IN_FLIGHT, 1, 1_000_000),
            consumer_group=e.get("SHELFEDGE_CONSUMER_GROUP", "shelfedge-invalidation"),
            consumer_session_timeout_ms=_int(
                e, "SHELFEDGE_CONSUMER_SESSION_TIMEOUT_MS", 10_000, 1_000, 300_000
            ),
            consumer_metrics_port=_int(e, "SHELFEDGE_CONSUMER_METRICS_PORT", 8601, 0, 65535),
            purgers=purgers,
            local_edge_url=_url(e, "SHELFEDGE_LOCAL_EDGE_URL", ("http", "https"))
            or f"http://127.0.0.1:{edge_port}",
            varnish_url=_need(e, "SHELFEDGE_VARNISH_URL")
            and _url(e, "SHELFEDGE_VARNISH_URL", ("http", "https"))
            if "varnish" in purgers
            else None,
            cloudflare=_cloudflare(e) if "cloudflare" in purgers else None,
            fastly=_fastly(e) if "fastly" in purgers else None,
            catalog_seed=_int(e, "SHELFEDGE_CATALOG_SEED", 42, 0, 2**31),
            catalog_skus=_int(e, "SHELFEDGE_CATALOG_SKUS", 5000, 10, 1_000_000),
            admin_tokens=tokens,
            admin_token_names=names,
            events_rate=_optional_float(e, "SHELFEDGE_EVENTS_RATE") or 20.0,
            events_burst=_int(e, "SHELFEDGE_EVENTS_BURST", 40, 1, 1_000_000),
            aggregator_group=e.get("SHELFEDGE_AGGREGATOR_GROUP", "shelfedge-aggregator"),
        )


def _int(e: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = e.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SettingsError(name, f"an integer in {low}..{high}", raw)
    return value


def _choice(e: Mapping[str, str], name: str, options: tuple[str, ...], default: str) -> str:
    raw = e.get(name, default)
    if raw not in options:
        raise SettingsError(name, f"one of {', '.join(options)}", raw)
    return raw


def _list(e: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = e.get(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _url(e: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = e.get(name)
    if raw is None or raw == "":
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.netloc):
        raise SettingsError(name, f"a URL with scheme {'/'.join(schemes)} and a host", raw)
    return raw.rstrip("/")


def _bootstrap(e: Mapping[str, str]) -> str | None:
    raw = e.get("KAFKA_BOOTSTRAP_SERVERS")
    if raw is None or raw == "":
        return None
    for server in raw.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "a comma list of host:port", raw)
    return raw


def _need(e: Mapping[str, str], name: str) -> str:
    value = e.get(name)
    if not value:
        raise SettingsError(name, "a value (its purger is enabled in SHELFEDGE_PURGERS)", None)
    return value


def _optional_float(e: Mapping[str, str], name: str) -> float | None:
    raw = e.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < math.inf:  # also refuses nan and inf, which float() accepts
        raise SettingsError(name, "a positive number", raw)
    return value


def _cloudflare(e: Mapping[str, str]) -> CloudflareSettings:
    bucket = e.get("SHELFEDGE_CLOUDFLARE_BUCKET")
    return CloudflareSettings(
        zone_id=_need(e, "SHELFEDGE_CLOUDFLARE_ZONE_ID"),
        api_token=_need(e, "SHELFEDGE_CLOUDFLARE_API_TOKEN"),
        plan=_choice(e, "SHELFEDGE_CLOUDFLARE_PLAN", CLOUDFLARE_PLANS, "free"),
        api_base=_url(e, "SHELFEDGE_CLOUDFLARE_API_BASE", ("http", "https")) or CLOUDFLARE_API_BASE,
        rate_per_second=_optional_float(e, "SHELFEDGE_CLOUDFLARE_RATE"),
        bucket_size=None if not bucket else _int(e, "SHELFEDGE_CLOUDFLARE_BUCKET", 1, 1, 100_000),
    )


def _fastly(e: Mapping[str, str]) -> FastlySettings:
    return FastlySettings(
        service_id=_need(e, "SHELFEDGE_FASTLY_SERVICE_ID"),
        api_token=_need(e, "SHELFEDGE_FASTLY_API_TOKEN"),
        soft_purge=_choice(e, "SHELFEDGE_FASTLY_SOFT_PURGE", ("true", "false"), "true") == "true",
        api_base=_url(e, "SHELFEDGE_FASTLY_API_BASE", ("http", "https")) or FASTLY_API_BASE,
    )


def _tokens(e: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """SHELFEDGE_ADMIN_TOKENS="alice=token1:editor,token2:viewer" -> (token -> role,
    token -> name). Tokens are never echoed in errors or logs."""
    raw = e.get("SHELFEDGE_ADMIN_TOKENS", "")
    roles: dict[str, str] = {}
    names: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        named, _, role = item.rpartition(":")
        name, has_name, token = named.partition("=")
        if not (has_name and _TOKEN_NAME.fullmatch(name) and len(token) >= 16):
            name, token = "", named  # no name prefix: the whole value is the token
        if len(token) < 16 or role not in ("viewer", "editor"):
            raise SettingsError(
                "SHELFEDGE_ADMIN_TOKENS",
                "a comma list of [<name>=]<token of 16+ chars>:<viewer|editor>",
                "<hidden>",
            )
        roles[token] = role
        names[token] = name or token_fingerprint(token)
    return roles, names


def token_fingerprint(token: str) -> str:
    """A name for an unnamed token that identifies it in audit logs without revealing it."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]
