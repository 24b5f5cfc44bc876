"""The Redis URL grammar shelfedge accepts, and which topology (one node or a cluster) it names.

- `redis://[user:password@]host:port[/db]`, `rediss://...` (TLS), `unix:///path.sock`: one node.
- `redis+cluster://[user:password@]host:port[,host:port...][/?query]` and `rediss+cluster://...`
  (TLS): a Redis Cluster, reached through any of the listed seed nodes (the client discovers
  the rest from `CLUSTER SLOTS`; listing several only matters when one seed may be down).

Query parameters (e.g. `?ssl_cert_reqs=none`, `?ssl_ca_certs=...`) pass through to redis-py's
URL parser for both topologies. It does no I/O; it never logs a password.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from origin.errors import RedisUrlError

SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
REDIS_SCHEMES = SINGLE_SCHEMES + CLUSTER_SCHEMES


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """A Redis Cluster: its seed nodes, and one single-node URL carrying auth, TLS and options."""

    seeds: tuple[tuple[str, int], ...]
    node_url: str
    """`redis[s]://[user:password@]FIRST_SEED[/db][?query]`, what redis-py's parser reads."""


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def cluster_target(url: str) -> ClusterTarget:
    """The seeds of a `redis+cluster://` / `rediss+cluster://` URL, or RedisUrlError."""
    parts = urlsplit(url)
    if parts.scheme not in CLUSTER_SCHEMES:
        raise RedisUrlError(f"not a cluster URL (scheme {parts.scheme!r}, want redis+cluster)")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    seeds: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(
                f"cluster seed {item.strip()!r} is not host:port "
                "(write redis+cluster://host:port[,host:port...])"
            )
        seeds.append((host, int(port)))
    scheme = parts.scheme.removesuffix("+cluster")
    auth = f"{userinfo}@" if userinfo else ""
    first = hosts.split(",")[0].strip()
    query = f"?{parts.query}" if parts.query else ""
    return ClusterTarget(tuple(seeds), f"{scheme}://{auth}{first}{parts.path}{query}")


def as_cluster_url(url: str) -> str:
    """`redis://` -> `redis+cluster://` (and `rediss`), for `SHELFEDGE_REDIS_CLUSTER=1`."""
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        return url
    if parts.scheme not in ("redis", "rediss"):
        raise RedisUrlError(f"a {parts.scheme}:// URL cannot name a Redis Cluster")
    return f"{parts.scheme}+cluster{url[len(parts.scheme) :]}"
