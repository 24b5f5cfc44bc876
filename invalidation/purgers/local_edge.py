"""The local edge's purge endpoint: ``POST /se/purge`` with ``{"tags": [...]}``."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.purgers.base import send

MAX_TAGS_PER_REQUEST = 500


class LocalEdgePurger:
    name = "local-edge"
    max_tags_per_request = MAX_TAGS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, url: str, token: str | None = None) -> None:
        self.client = client
        self.url = url.rstrip("/") + "/se/purge"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def purge(self, tags: Sequence[str]) -> None:
        request = self.client.build_request(
            "POST", self.url, json={"tags": list(tags)}, headers=self.headers
        )
        await send(self.client, self.name, request)
