"""The origin's settings (the web service, the aggregator, the seed command and the local edge),
read once from the environment at start-up.

Every variable is ``SHELFEDGE_*`` except the two conventional ones, ``REDIS_URL`` and
``KAFKA_BOOTSTRAP_SERVERS``. A bad value stops the process with a message naming the variable
and what is expected. The parsers are `origin.core.env`'s; the invalidation consumer has its own
settings (`invalidation.settings`). Nothing else in shelfedge reads ``os.environ``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fragments.batch_signing import DEV_EVENT_KEYS, SigningKeys
from fragments.segment_cookie import DEV_SEGMENT_SECRET
from origin.core.env import (
    env_bootstrap,
    env_choice,
    env_int,
    env_list,
    env_positive_float,
    env_purgers,
    env_redis_url,
    env_url,
    redacted_repr,
)
from origin.core.kafka_security import KafkaSecurity, env_kafka_security
from origin.errors import SettingsError
from origin.ingest.judging import MAX_JUDGE_WORKERS

ENVIRONMENTS = ("dev", "staging", "prod")
"""``SHELFEDGE_ENV``: only ``dev`` accepts the public development secrets and mounts the demo
storefront; ``staging`` behaves like ``prod``."""

_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the origin's processes read."""

    redis_url: str | None = None
    """Redis to use; None means the dev supervisor starts its own."""
    kafka_bootstrap: str | None = None
    """Kafka bootstrap servers; None means the dev supervisor starts the Tansu broker."""
    env: str = "dev"
    """``dev``, ``staging`` or ``prod``; outside dev the development secrets are refused and the
    demo storefront is not mounted."""
    origin_host: str = "127.0.0.1"
    origin_port: int = 8600
    edge_port: int = 8700
    edge_origin_url: str = "http://127.0.0.1:8600"
    """Where the local edge fetches bundles from."""
    public_edge_url: str = "http://127.0.0.1:8700"
    """Where the storefront page includes slots from."""
    segment_secret: str = field(default=DEV_SEGMENT_SECRET, repr=False)
    """HMAC key of the signed segment cookie (shared by origin and edge)."""
    redis_timeout_ms: int = 250
    """Per-command Redis timeout on request paths; beyond it the origin answers 503."""
    purgers: tuple[str, ...] = ("local-edge",)
    """Purgers whose queues a publication enqueues to (the consumer's `SHELFEDGE_PURGERS`)."""
    catalog_seed: int = 42
    catalog_skus: int = 5000
    admin_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Bearer token -> role (viewer, editor, ingest), from SHELFEDGE_ADMIN_TOKENS. Viewers read
    the admin API, editors also write; ingest is a separate capability (catalog feeds,
    recommendation lists) that neither reads nor edits anything else."""
    admin_token_names: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Bearer token -> the name audit entries record (``name=token:role``; default: a short
    fingerprint of the token, never the token)."""
    events_rate: float = 20.0
    """POST /v1/events: batches per second each edge key may sustain (token bucket in Redis,
    shared by every origin process)."""
    events_burst: int = 40
    """POST /v1/events: the bucket size (batches an edge key may send at once)."""
    event_keys: SigningKeys = field(default_factory=lambda: SigningKeys.parse(DEV_EVENT_KEYS))
    """HMAC keys of signed event batches (``kid=secret,...``; the last signs, all verify)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses (or CIDRs) whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes; none by
    default, so the peer address is the client."""
    consent_policy: str = "implied"
    """``implied`` or ``required``: with ``required`` the edge stores no visitor id or sticky
    cookie before the shopper consented (docs/security.md#consent)."""
    edge_debug_headers: bool = True
    """The local edge sends X-Shelfedge-Experiment on every slot (default: on in dev only)."""
    edge_purge_token: str | None = None
    """Bearer token the local edge's ``POST /se/purge`` requires (None: open, dev only)."""
    edge_segment_refresh_after_s: float = 60.0
    """Age (seconds) after which the local edge refreshes a consenting shopper's segment cookie
    from the context service in the background (``SHELFEDGE_SEGMENT_REFRESH_AFTER_S``)."""
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    """TLS / SASL of every Kafka client (`origin.core.kafka_security`)."""
    edge_config_token: str | None = None
    """Bearer token the edge sends to read ``/v1/edge-config`` (admin viewer tokens work too)."""
    aggregator_group: str = "shelfedge-aggregator"
    """Kafka consumer group of the exposure/conversion aggregator."""
    context_group: str = "shelfedge-context"
    """Kafka consumer group of the context processor (SHELFEDGE_CONTEXT_GROUP)."""
    profile_ttl_seconds: int = 30 * 24 * 3600
    """How long a shopper profile lives after its last event (SHELFEDGE_PROFILE_TTL_SECONDS)."""
    max_hot_anchors: int = 20_000
    """Anchored partitions (slot x anchor SKU) keeping stored bundles in Redis; the coldest beyond
    it are deleted and rebuilt on request (SHELFEDGE_MAX_HOT_ANCHORS, docs/context.md)."""
    segments_file: str | None = None
    """Segments file (TOML, or JSON by its .json suffix) `shelfedge seed` and `shelfedge
    segments sync` read; None: the demo's segments (origin/core/demo_segments.toml)."""
    kv_account_id: str | None = None
    """Cloudflare account of the Workers KV namespace the published config is pushed to
    (SHELFEDGE_KV_ACCOUNT_ID); None: no push (copy it by hand, docs/experiments.md)."""
    kv_namespace_id: str | None = None
    """That KV namespace (the Worker's ``CONFIG`` binding), SHELFEDGE_KV_NAMESPACE_ID."""
    kv_api_token: str | None = field(default=None, repr=False)
    """API token with "Workers KV Storage Write", SHELFEDGE_KV_API_TOKEN (never printed)."""
    kv_api_base: str = "https://api.cloudflare.com/client/v4"
    """SHELFEDGE_KV_API_BASE: Cloudflare's API (https in prod; tests point it at a fake)."""
    import_workers: int | None = None
    """Worker processes a catalog import may start to validate large feeds
    (SHELFEDGE_IMPORT_WORKERS; None: one per core beyond the first, at most 4; 0: none)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate; raise SettingsError naming the first bad variable."""
        e = os.environ if environ is None else environ
        env = env_choice(e, "SHELFEDGE_ENV", ENVIRONMENTS, "dev")
        secret = e.get("SHELFEDGE_SEGMENT_SECRET", DEV_SEGMENT_SECRET)
        if env != "dev" and secret == DEV_SEGMENT_SECRET:
            raise SettingsError(
                "SHELFEDGE_SEGMENT_SECRET", f"a secret of your own (SHELFEDGE_ENV={env})", None
            )
        if len(secret) < 16:
            raise SettingsError("SHELFEDGE_SEGMENT_SECRET", "at least 16 characters", "<hidden>")
        purgers = env_purgers(e)
        origin_port = env_int(e, "SHELFEDGE_ORIGIN_PORT", 8600, 1, 65535)
        edge_port = env_int(e, "SHELFEDGE_EDGE_PORT", 8700, 1, 65535)
        tokens, names = _tokens(e)
        kv = _kv(e, env)
        return cls(
            redis_url=env_redis_url(e),
            kafka_bootstrap=env_bootstrap(e),
            env=env,
            origin_host=e.get("SHELFEDGE_ORIGIN_HOST", "127.0.0.1"),
            origin_port=origin_port,
            edge_port=edge_port,
            edge_origin_url=env_url(e, "SHELFEDGE_EDGE_ORIGIN_URL", ("http", "https"))
            or f"http://127.0.0.1:{origin_port}",
            public_edge_url=env_url(e, "SHELFEDGE_PUBLIC_EDGE_URL", ("http", "https"))
            or f"http://127.0.0.1:{edge_port}",
            segment_secret=secret,
            redis_timeout_ms=env_int(e, "SHELFEDGE_REDIS_TIMEOUT_MS", 250, 10, 60_000),
            purgers=purgers,
            catalog_seed=env_int(e, "SHELFEDGE_CATALOG_SEED", 42, 0, 2**31),
            catalog_skus=env_int(e, "SHELFEDGE_CATALOG_SKUS", 5000, 10, 1_000_000),
            admin_tokens=tokens,
            admin_token_names=names,
            events_rate=env_positive_float(e, "SHELFEDGE_EVENTS_RATE") or 20.0,
            events_burst=env_int(e, "SHELFEDGE_EVENTS_BURST", 40, 1, 1_000_000),
            aggregator_group=e.get("SHELFEDGE_AGGREGATOR_GROUP", "shelfedge-aggregator"),
            segments_file=e.get("SHELFEDGE_SEGMENTS_FILE") or None,
            event_keys=_event_keys(e, env),
            trusted_proxies=env_list(e, "SHELFEDGE_TRUSTED_PROXIES", ()),
            edge_config_token=_optional_token(e, "SHELFEDGE_EDGE_CONFIG_TOKEN"),
            kafka_security=env_kafka_security(e),
            edge_purge_token=_optional_token(e, "SHELFEDGE_EDGE_PURGE_TOKEN"),
            edge_segment_refresh_after_s=_seconds(e, "SHELFEDGE_SEGMENT_REFRESH_AFTER_S", 60.0),
            consent_policy=env_choice(
                e, "SHELFEDGE_CONSENT_POLICY", ("implied", "required"), "implied"
            ),
            edge_debug_headers=env_choice(
                e, "SHELFEDGE_EDGE_DEBUG", ("0", "1"), "1" if env == "dev" else "0"
            )
            == "1",
            kv_account_id=kv[0],
            kv_namespace_id=kv[1],
            kv_api_token=kv[2],
            kv_api_base=kv[3],
            import_workers=(
                env_int(e, "SHELFEDGE_IMPORT_WORKERS", 0, 0, MAX_JUDGE_WORKERS)
                if e.get("SHELFEDGE_IMPORT_WORKERS")
                else None
            ),
            context_group=e.get("SHELFEDGE_CONTEXT_GROUP", "shelfedge-context"),
            profile_ttl_seconds=env_int(
                e, "SHELFEDGE_PROFILE_TTL_SECONDS", 30 * 24 * 3600, 60, 400 * 24 * 3600
            ),
            max_hot_anchors=env_int(e, "SHELFEDGE_MAX_HOT_ANCHORS", 20_000, 1, 10_000_000),
        )

    def __repr__(self) -> str:
        """Field values with secrets hidden and passwords removed from URLs."""
        return redacted_repr(self, hidden=_SECRET_FIELDS)


_SECRET_FIELDS = frozenset(
    {"segment_secret", "admin_tokens", "admin_token_names", "edge_config_token", "edge_purge_token"}
)


def _event_keys(e: Mapping[str, str], env: str) -> SigningKeys:
    raw = e.get("SHELFEDGE_EVENT_KEYS", "")
    if not raw:
        if env != "dev":
            raise SettingsError(
                "SHELFEDGE_EVENT_KEYS", f"kid=secret pairs of your own (SHELFEDGE_ENV={env})", None
            )
        raw = DEV_EVENT_KEYS
    try:
        keys = SigningKeys.parse(raw)
    except ValueError as exc:
        raise SettingsError("SHELFEDGE_EVENT_KEYS", str(exc), "<hidden>") from exc
    dev = SigningKeys.parse(DEV_EVENT_KEYS).newest
    if env != "dev" and any(k.secret == dev.secret for k in keys.keys):
        raise SettingsError(
            "SHELFEDGE_EVENT_KEYS", f"not the development key (SHELFEDGE_ENV={env})", None
        )
    return keys


MAX_SEGMENT_REFRESH_AFTER_S = 12 * 3600.0
"""Half the segment cookie's lifetime: a cookie is refreshed well before it expires."""


def _seconds(e: Mapping[str, str], name: str, default: float) -> float:
    raw = e.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_SEGMENT_REFRESH_AFTER_S:  # NaN fails too
        raise SettingsError(name, f"seconds in (0, {MAX_SEGMENT_REFRESH_AFTER_S:g}]", raw)
    return value


def _optional_token(e: Mapping[str, str], name: str) -> str | None:
    raw = e.get(name) or None
    if raw is not None and len(raw) < 16:
        raise SettingsError(name, "a token of at least 16 characters", "<hidden>")
    return raw


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
        if len(token) < 16 or role not in ("viewer", "editor", "ingest"):
            raise SettingsError(
                "SHELFEDGE_ADMIN_TOKENS",
                "a comma list of [<name>=]<token of 16+ chars>:<viewer|editor|ingest>",
                "<hidden>",
            )
        roles[token] = role
        names[token] = name or token_fingerprint(token)
    return roles, names


_KV_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def _kv(e: Mapping[str, str], env: str) -> tuple[str | None, str | None, str | None, str]:
    """The Workers KV push settings: all three of account, namespace and token, or none."""
    names = ("SHELFEDGE_KV_ACCOUNT_ID", "SHELFEDGE_KV_NAMESPACE_ID", "SHELFEDGE_KV_API_TOKEN")
    account, namespace, token = (e.get(n) or None for n in names)
    base = env_url(e, "SHELFEDGE_KV_API_BASE", ("https",) if env == "prod" else ("http", "https"))
    base = base or "https://api.cloudflare.com/client/v4"
    given = [n for n, v in zip(names, (account, namespace, token), strict=True) if v]
    if given and len(given) != len(names):
        missing = next(n for n in names if n not in given)
        raise SettingsError(missing, f"set with {', '.join(given)} (all three or none)", None)
    for name, value in ((names[0], account), (names[1], namespace)):
        if value is not None and not _KV_ID.fullmatch(value):
            raise SettingsError(name, "a Cloudflare id: 1-32 letters and digits", value[:40])
    return account, namespace, token, base


def token_fingerprint(token: str) -> str:
    """A name for an unnamed token that identifies it in audit logs without revealing it."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]
