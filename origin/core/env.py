"""Reading settings from the environment: the parsers every process kind's settings use.

Each parser returns a typed value or raises `SettingsError` naming the variable and what is
expected (never echoing a secret). Only the settings modules call them (`origin.settings`,
`invalidation.settings`); nothing else in shelfedge reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from origin.core.redis_url import REDIS_SCHEMES, as_cluster_url, cluster_target
from origin.errors import RedisUrlError, SettingsError

PURGER_NAMES = ("local-edge", "varnish", "cloudflare", "fastly", "akamai")
"""The purgers shelfedge can drive; each has its own purge queue per partition."""


def env_purgers(e: Mapping[str, str]) -> tuple[str, ...]:
    """SHELFEDGE_PURGERS: which purgers get purge obligations (a comma list of `PURGER_NAMES`)."""
    purgers = env_list(e, "SHELFEDGE_PURGERS", ("local-edge",))
    for name in purgers:
        if name not in PURGER_NAMES:
            raise SettingsError("SHELFEDGE_PURGERS", f"a comma list of {PURGER_NAMES}", name)
    return purgers


def env_int(e: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
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


def env_choice(e: Mapping[str, str], name: str, options: tuple[str, ...], default: str) -> str:
    raw = e.get(name, default)
    if raw not in options:
        raise SettingsError(name, f"one of {', '.join(options)}", raw)
    return raw


def env_list(e: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = e.get(name)
    if raw is None:
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def env_url(
    e: Mapping[str, str], name: str, schemes: tuple[str, ...], *, echo: bool = True
) -> str | None:
    raw = e.get(name)
    if raw is None or raw == "":
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.netloc):
        shown = redact_url(raw) if echo else f"<a {parts.scheme or 'scheme-less'} URL>"
        raise SettingsError(name, f"a URL with scheme {'/'.join(schemes)} and a host", shown)
    return raw.rstrip("/")


def env_redis_url(e: Mapping[str, str]) -> str | None:
    """`REDIS_URL`, as the URL `origin.core.redis_client` reads (topology in the scheme).

    One node: `redis://`, `rediss://` (TLS), `unix://`. A Redis Cluster: `redis+cluster://`
    or `rediss+cluster://host:port[,host:port...]`, or a `redis[s]://` URL of any node with
    `SHELFEDGE_REDIS_CLUSTER=1`. Errors never echo the URL (it may hold a password).
    """
    url = env_url(e, "REDIS_URL", REDIS_SCHEMES, echo=False)
    cluster = env_flag(e, "SHELFEDGE_REDIS_CLUSTER")
    if url is None:
        if cluster:
            raise SettingsError(
                "REDIS_URL", "a cluster node's URL (SHELFEDGE_REDIS_CLUSTER=1)", None
            )
        return None
    try:
        if cluster:
            url = as_cluster_url(url)
        if urlsplit(url).scheme.endswith("+cluster"):
            cluster_target(url)
    except RedisUrlError as exc:
        raise SettingsError("REDIS_URL", str(exc), "<hidden>") from exc
    return url


def env_flag(e: Mapping[str, str], name: str) -> bool:
    raw = e.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SettingsError(name, "1 or 0", raw)


def env_bootstrap(e: Mapping[str, str]) -> str | None:
    raw = e.get("KAFKA_BOOTSTRAP_SERVERS")
    if raw is None or raw == "":
        return None
    for server in raw.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "a comma list of host:port", raw)
    return raw


def env_need(e: Mapping[str, str], name: str) -> str:
    value = e.get(name)
    if not value:
        raise SettingsError(name, "a value (its purger is enabled in SHELFEDGE_PURGERS)", None)
    return value


def env_positive_float(e: Mapping[str, str], name: str) -> float | None:
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


def redact_url(url: str) -> str:
    """`url` with any password replaced by ``***`` (``redis://:pw@host`` -> ``redis://:***@host``);
    anything that does not parse as a URL with credentials is returned as it is."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def redacted_repr(obj: Any, hidden: frozenset[str]) -> str:
    """A dataclass repr with the `hidden` fields (and every field declared ``repr=False``) shown
    as ``<hidden>`` and every string that is a URL with a password redacted (`redact_url`).
    Settings objects use it as their repr."""
    shown: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in hidden or not f.repr:
            text = "<hidden>" if value else repr(value)
        elif isinstance(value, str) and "@" in value:
            text = repr(redact_url(value))
        else:
            text = repr(value)
        shown.append(f"{f.name}={text}")
    return f"{type(obj).__name__}({', '.join(shown)})"
