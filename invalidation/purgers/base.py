"""The purger interface and the one translation of HTTP outcomes into `PurgeFailed`."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence
from typing import Protocol

import httpx

from invalidation.errors import (
    PurgeFailed,
    PurgeRejected,
    PurgerUnusable,
    PurgeUnauthorized,
    PurgeUnavailable,
)
from origin.core.purge_queue import PurgeMode

AUTH_STATUSES = frozenset({401, 403})
"""The API refused the credential: stop the purger (never retried, never bisected)."""

ENDPOINT_STATUSES = frozenset({404, 405})
"""The purge endpoint does not exist (wrong zone, service or URL): stop the purger too."""

TRANSIENT_CLIENT_STATUSES = frozenset({408, 425, 429})
"""4xx answers that mean "not now" rather than "not this": retried like a 5xx."""


class Purger(Protocol):
    """Drops cached entries by tag: evicts them (`PurgeMode.HARD`) or marks them stale
    (`PurgeMode.SOFT`; a cache without soft purge evicts, which is always safe)."""

    name: str
    max_tags_per_request: int

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        """Purge these tags; raise a `PurgeFailed` subclass when the cache did not accept."""
        ...


async def send(client: httpx.AsyncClient, purger: str, request: httpx.Request) -> httpx.Response:
    """Send a purge request; return the 2xx answer, or raise what `failure_of` says."""
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        raise PurgeUnavailable(purger, f"{type(exc).__name__}: {exc}") from exc
    if response.is_success:
        return response
    raise failure_of(purger, response)


def failure_of(purger: str, response: httpx.Response) -> PurgeFailed:
    """The `PurgeFailed` for a non-2xx answer: retriable for 408/425/429/5xx; the purger is
    unusable for 401/403 (credential) and 404/405 (endpoint); rejected (the request's content)
    for any other status."""
    status = response.status_code
    detail = f"HTTP {status}: {response.text[:200]}"
    if status >= 500 or status in TRANSIENT_CLIENT_STATUSES:
        retry_after = retry_after_seconds(response.headers.get("retry-after"), time.time())
        return PurgeUnavailable(purger, detail, status=status, retry_after=retry_after)
    if status in AUTH_STATUSES:
        return PurgeUnauthorized(purger, detail, status=status)
    if status in ENDPOINT_STATUSES:
        return PurgerUnusable(purger, detail, status=status)
    return PurgeRejected(purger, detail, status=status)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (delta-seconds or an HTTP date) as seconds from `now`; None when
    absent or unreadable (the caller then uses its own backoff)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
