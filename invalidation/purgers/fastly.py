"""Fastly surrogate-key purge: ``POST /service/{service_id}/purge`` with a ``Surrogate-Key``
header of up to 256 space-separated keys, ``Fastly-Key`` auth, optional ``Fastly-Soft-Purge: 1``
(mark stale instead of evicting, so stale-while-revalidate keeps serving)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.purgers.base import send
from invalidation.settings import FastlySettings

MAX_KEYS_PER_REQUEST = 256


class FastlyPurger:
    name = "fastly"
    max_tags_per_request = MAX_KEYS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, settings: FastlySettings) -> None:
        self.client = client
        self.url = f"{settings.api_base}/service/{settings.service_id}/purge"
        self._token = settings.api_token
        self.soft = settings.soft_purge

    async def purge(self, tags: Sequence[str]) -> None:
        headers = {"Fastly-Key": self._token, "Surrogate-Key": " ".join(tags)}
        if self.soft:
            headers["Fastly-Soft-Purge"] = "1"
        await send(
            self.client, self.name, self.client.build_request("POST", self.url, headers=headers)
        )
