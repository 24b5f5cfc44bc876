"""The local edge's experiment configuration: fetched from the origin, stale-while-revalidate.

`ConfigRefresher.current()` never waits: it returns the last good configuration and, once that
is older than its TTL (the origin's ``max-age``, 5 s by default), starts one background refresh
(``GET /v1/edge-config`` with If-None-Match). A failed refresh (origin down, bad JSON, 5xx)
keeps the last good configuration and is counted; the next request after the TTL tries again.
`last_success_unix` is the wall-clock time of the last refresh that reached the origin's
answer (200 or 304): how stale the configuration may be, which the edge exports as a metric.
Before the first success the configuration is `EMPTY_CONFIG`: everyone sees control, which is
the safe default. A thin adapter: no routing decisions here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import httpx

from fragments.experiment_codec import config_from_json
from fragments.experiments import EMPTY_CONFIG, EdgeExperimentConfig

log = logging.getLogger("shelfedge.edge.config")

EDGE_CONFIG_PATH = "/v1/edge-config"
DEFAULT_TTL_S = 5.0
MAX_TTL_S = 300.0
_MAX_AGE = re.compile(r"max-age=(\d+)")


class ConfigRefresher:
    """Holds the current experiment configuration and refreshes it in the background."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        origin_url: str,
        *,
        ttl: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        token: str | None = None,
    ) -> None:
        self.client = client
        self.token = token
        """Bearer token for ``/v1/edge-config`` (``SHELFEDGE_EDGE_CONFIG_TOKEN``)."""
        self.url = origin_url.rstrip("/") + EDGE_CONFIG_PATH
        self.default_ttl = ttl
        self.ttl = ttl
        self.clock = clock
        self.wall_clock = wall_clock
        self.config: EdgeExperimentConfig = EMPTY_CONFIG
        self.etag: str | None = None
        self.fetched_at = float("-inf")
        self.last_success_unix = 0.0
        """Unix time of the last 200 or 304 from the origin; 0.0 before the first."""
        self.outcomes: dict[str, int] = {"updated": 0, "not-modified": 0, "failed": 0}
        self._task: asyncio.Task[str] | None = None

    def current(self) -> EdgeExperimentConfig:
        """The last good configuration; schedules a background refresh when it is stale."""
        if self.clock() - self.fetched_at >= self.ttl and self._task is None:
            self._task = asyncio.create_task(self._refresh_once(), name="edge-config-refresh")
        return self.config

    async def _refresh_once(self) -> str:
        try:
            return await self.refresh()
        finally:
            self._task = None

    async def refresh(self) -> str:
        """Fetch now; returns ``updated``, ``not-modified`` or ``failed: <why>``."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = await self.client.get(self.url, headers=headers)
            if response.status_code == 304:
                outcome = "not-modified"
            elif response.status_code == 200:
                self.config = config_from_json(response.content)
                self.etag = response.headers.get("etag")
                outcome = "updated"
            else:
                raise ValueError(f"HTTP {response.status_code}")
            self.ttl = _ttl(response.headers.get("cache-control"), self.default_ttl)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.outcomes["failed"] += 1
            self.fetched_at = self.clock()
            log.warning(
                "edge config refresh failed (keeping version %d): %s", self.config.version, exc
            )
            return f"failed: {type(exc).__name__}"
        self.fetched_at = self.clock()
        self.last_success_unix = self.wall_clock()
        self.outcomes[outcome] += 1
        return outcome

    async def close(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _ttl(cache_control: str | None, default: float) -> float:
    match = _MAX_AGE.search(cache_control or "")
    return min(float(match.group(1)), MAX_TTL_S) if match else default
