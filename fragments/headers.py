"""Cache headers for a bundle: one policy and one tag set, spoken in every cache's dialect.

- ``Cache-Control`` (RFC 9111) for browsers and generic shared caches: browsers revalidate
  (max-age=0, cheap with the strong ETag); shared caches use s-maxage and RFC 5861 extensions.
- ``CDN-Cache-Control`` (RFC 9213) and ``Surrogate-Control`` (Fastly, our Varnish VCL) for CDNs.
- Tags: ``Cache-Tag`` (Cloudflare, comma-separated), ``Surrogate-Key`` (Fastly, space-separated),
  ``xkey`` (Varnish xkey vmod, space-separated).

A tag set that does not fit a header's limit degrades to the bundle's coarse tags (global, slot,
segment, slot+segment, bundle), never to a truncated, wrong list. Never performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from fragments.ids import FragmentKey
from fragments.slots import CachePolicy
from fragments.tags import coarse_tags

CLOUDFLARE_CACHE_TAG_LIMIT = 16 * 1024
"""Cloudflare: the Cache-Tag header may hold at most 16 KB."""
FASTLY_SURROGATE_KEY_LIMIT = 16 * 1024
"""Fastly: Surrogate-Key header at most 16 KB."""
VARNISH_XKEY_LIMIT = 7 * 1024
"""Varnish's default http_resp_hdr_len is 8 KB per header line; stay below it."""
MAX_TAG_LENGTH = 1024
"""Cloudflare and Fastly: one tag at most 1,024 characters."""


@dataclass(frozen=True, slots=True)
class TagHeaders:
    """The three tag headers, each either the full set or the coarse fallback."""

    cache_tag: str
    surrogate_key: str
    xkey: str
    degraded: bool
    """True when at least one header fell back to coarse tags."""


def fit_tags(key: FragmentKey, tags: tuple[str, ...]) -> TagHeaders:
    """Join tags for each header; use the coarse set where the full one would not fit."""
    usable = tuple(
        t for t in tags if 0 < len(t) <= MAX_TAG_LENGTH and "," not in t and " " not in t
    )
    coarse = coarse_tags(key)
    degraded = len(usable) != len(tags)
    joined: list[str] = []
    for sep, limit in (
        (",", CLOUDFLARE_CACHE_TAG_LIMIT),
        (" ", FASTLY_SURROGATE_KEY_LIMIT),
        (" ", VARNISH_XKEY_LIMIT),
    ):
        full = sep.join(usable)
        if len(usable) == len(tags) and len(full.encode("utf-8")) <= limit:
            joined.append(full)
        else:
            degraded = True
            joined.append(sep.join(coarse))
    return TagHeaders(joined[0], joined[1], joined[2], degraded)


def directives(policy: CachePolicy) -> str:
    """Shared-cache directives with explicit seconds."""
    return (
        f"max-age={policy.max_age}, stale-while-revalidate={policy.stale_while_revalidate}, "
        f"stale-if-error={policy.stale_if_error}"
    )


def cache_headers(
    key: FragmentKey, policy: CachePolicy, tags: tuple[str, ...], content_hash: str
) -> list[tuple[str, str]]:
    """Every header a cacheable bundle or fragment response carries."""
    tag_headers = fit_tags(key, tags)
    shared = directives(policy)
    return [
        (
            "Cache-Control",
            f"public, max-age=0, s-maxage={policy.max_age}, "
            f"stale-while-revalidate={policy.stale_while_revalidate}, "
            f"stale-if-error={policy.stale_if_error}",
        ),
        ("CDN-Cache-Control", shared),
        ("Surrogate-Control", shared),
        ("Cache-Tag", tag_headers.cache_tag),
        ("Surrogate-Key", tag_headers.surrogate_key),
        ("xkey", tag_headers.xkey),
        ("ETag", f'"{content_hash}"'),
        ("Vary", "Accept-Encoding"),
    ]


def etag_matches(if_none_match: str | None, content_hash: str) -> bool:
    """RFC 9110 If-None-Match (weak comparison): True means answer 304."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        tag = tag.removeprefix("W/")
        if tag == f'"{content_hash}"':
            return True
    return False
