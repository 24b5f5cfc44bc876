"""Fastly surrogate-key purge in batches: ``POST /service/{service_id}/purge`` with a
``Surrogate-Key`` header of up to 256 space-separated keys (Fastly's documented batch limit;
the JSON body ``{"surrogate_keys": [...]}`` is the documented alternative), ``Fastly-Key`` auth,
and ``Fastly-Soft-Purge: 1`` for a soft purge (mark stale instead of evicting, so
stale-while-revalidate keeps serving). With ``soft_purge`` off in the settings every purge is
hard."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.purgers.base import send
from invalidation.settings import FastlySettings
from origin.core.purge_queue import PurgeMode

MAX_KEYS_PER_REQUEST = 256


class FastlyPurger:
    name = "fastly"
    max_tags_per_request = MAX_KEYS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, settings: FastlySettings) -> None:
        self.client = client
        self.url = f"{settings.api_base}/service/{settings.service_id}/purge"
        self._token = settings.api_token
        self.soft = settings.soft_purge
        """Whether soft purges are sent soft (else every purge evicts)."""

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        if len(tags) > MAX_KEYS_PER_REQUEST:
            raise ValueError(f"at most {MAX_KEYS_PER_REQUEST} surrogate keys per Fastly purge")
        headers = {"Fastly-Key": self._token, "Surrogate-Key": " ".join(tags)}
        if self.soft and mode is PurgeMode.SOFT:
            headers["Fastly-Soft-Purge"] = "1"
        await send(
            self.client, self.name, self.client.build_request("POST", self.url, headers=headers)
        )
