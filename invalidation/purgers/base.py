"""The purger interface and the shared HTTP error translation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from invalidation.errors import PurgeFailed


class Purger(Protocol):
    """Drops cached entries by tag."""

    name: str
    max_tags_per_request: int

    async def purge(self, tags: Sequence[str]) -> None:
        """Purge these tags; raise PurgeFailed when the cache did not accept the purge."""
        ...


async def send(client: httpx.AsyncClient, purger: str, request: httpx.Request) -> httpx.Response:
    """Send a purge request; non-2xx and network errors become PurgeFailed."""
    try:
        response = await client.send(request)
    except httpx.HTTPError as exc:
        raise PurgeFailed(purger, f"{type(exc).__name__}: {exc}", retriable=True) from exc
    if response.is_success:
        return response
    retriable = response.status_code == 429 or response.status_code >= 500
    raise PurgeFailed(
        purger,
        f"HTTP {response.status_code}: {response.text[:200]}",
        retriable=retriable,
        status=response.status_code,
    )
