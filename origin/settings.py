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

from fragments.segment_cookie import DEV_SEGMENT_SECRET
from origin.core.env import (
    env_bootstrap,
    env_choice,
    env_int,
    env_positive_float,
    env_purgers,
    env_redis_url,
    env_url,
)
from origin.errors import SettingsError

_TOKEN_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the origin's processes read."""

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
    purgers: tuple[str, ...] = ("local-edge",)
    """Purgers whose queues a publication enqueues to (the consumer's `SHELFEDGE_PURGERS`)."""
    catalog_seed: int = 42
    catalog_skus: int = 5000
    admin_tokens: Mapping[str, str] = field(default_factory=dict)
    """Bearer token -> role (viewer, editor, ingest), from SHELFEDGE_ADMIN_TOKENS. Viewers read
    the admin API, editors also write; ingest is a separate capability (catalog feeds,
    recommendation lists) that neither reads nor edits anything else."""
    admin_token_names: Mapping[str, str] = field(default_factory=dict)
    """Bearer token -> the name audit entries record (``name=token:role``; default: a short
    fingerprint of the token, never the token)."""
    events_rate: float = 20.0
    """POST /v1/events: requests per second each client IP may sustain (token bucket)."""
    events_burst: int = 40
    """POST /v1/events: the bucket size (requests a client may send at once)."""
    aggregator_group: str = "shelfedge-aggregator"
    """Kafka consumer group of the exposure/conversion aggregator."""
    segments_file: str | None = None
    """Segments file (TOML, or JSON by its .json suffix) `shelfedge seed` and `shelfedge
    segments sync` read; None: the demo's segments (origin/core/demo_segments.toml)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate; raise SettingsError naming the first bad variable."""
        e = os.environ if environ is None else environ
        env = env_choice(e, "SHELFEDGE_ENV", ("dev", "prod"), "dev")
        secret = e.get("SHELFEDGE_SEGMENT_SECRET", DEV_SEGMENT_SECRET)
        if env == "prod" and secret == DEV_SEGMENT_SECRET:
            raise SettingsError("SHELFEDGE_SEGMENT_SECRET", "a secret of your own in prod", None)
        if len(secret) < 16:
            raise SettingsError("SHELFEDGE_SEGMENT_SECRET", "at least 16 characters", "<hidden>")
        purgers = env_purgers(e)
        origin_port = env_int(e, "SHELFEDGE_ORIGIN_PORT", 8600, 1, 65535)
        edge_port = env_int(e, "SHELFEDGE_EDGE_PORT", 8700, 1, 65535)
        tokens, names = _tokens(e)
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
        if len(token) < 16 or role not in ("viewer", "editor", "ingest"):
            raise SettingsError(
                "SHELFEDGE_ADMIN_TOKENS",
                "a comma list of [<name>=]<token of 16+ chars>:<viewer|editor|ingest>",
                "<hidden>",
            )
        roles[token] = role
        names[token] = name or token_fingerprint(token)
    return roles, names


def token_fingerprint(token: str) -> str:
    """A name for an unnamed token that identifies it in audit logs without revealing it."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]
