"""The local edge's purge endpoint: ``POST /se/purge`` with ``{"tags": [...]}`` (hard: entries
removed) or ``{"tags": [...], "soft": true}`` (soft: entries marked stale, served while the edge
revalidates them)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.purgers.base import send
from origin.core.purge_queue import PurgeMode

MAX_TAGS_PER_REQUEST = 500


class LocalEdgePurger:
    name = "local-edge"
    max_tags_per_request = MAX_TAGS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None = None) -> None:
        self.client = client
        self.url = url.rstrip("/") + "/se/purge"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        body: dict[str, object] = {"tags": list(tags)}
        if mode is PurgeMode.SOFT:
            body["soft"] = True
        request = self.client.build_request("POST", self.url, json=body, headers=self.headers)
        await send(self.client, self.name, request)
