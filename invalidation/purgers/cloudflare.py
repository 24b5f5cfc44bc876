"""Cloudflare purge by tag: ``POST /zones/{zone_id}/purge_cache`` (hard: entries removed) or
``POST /zones/{zone_id}/invalidate_cache`` (soft: entries kept but marked stale, revalidated
with the origin by ETag on the next request), both with ``{"tags": [...]}``.

At most 100 tags per request; ``Authorization: Bearer <token>``; the body's ``success`` must be
true (a 2xx without it is treated as a transient failure: the same purge is retried). Rate
limits per plan are enforced by the purge worker's token bucket. With ``soft_purge`` off in
the settings every purge is hard.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.errors import PurgeUnavailable
from invalidation.purgers.base import send
from invalidation.settings import CloudflareSettings
from origin.core.purge_queue import PurgeMode

MAX_TAGS_PER_REQUEST = 100


class CloudflarePurger:
    name = "cloudflare"
    max_tags_per_request = MAX_TAGS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, settings: CloudflareSettings) -> None:
        self.client = client
        zone = f"{settings.api_base}/zones/{settings.zone_id}"
        self.urls = {
            PurgeMode.HARD: f"{zone}/purge_cache",
            PurgeMode.SOFT: f"{zone}/invalidate_cache"
            if settings.soft_purge
            else f"{zone}/purge_cache",
        }
        self._auth = f"Bearer {settings.api_token}"

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        if len(tags) > MAX_TAGS_PER_REQUEST:
            raise ValueError(f"at most {MAX_TAGS_PER_REQUEST} tags per Cloudflare purge")
        request = self.client.build_request(
            "POST",
            self.urls[mode],
            json={"tags": list(tags)},
            headers={"Authorization": self._auth},
        )
        response = await send(self.client, self.name, request)
        try:
            ok = response.json().get("success") is True
        except ValueError:
            ok = False
        if not ok:
            raise PurgeUnavailable(
                self.name, f"2xx answer without success=true: {response.text[:200]}"
            )
