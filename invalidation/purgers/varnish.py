"""Varnish xkey purge: a ``PURGE`` request carrying ``xkey-purge: tag1 tag2`` (hard: evicted) or
``xkey-softpurge: tag1 tag2`` (soft: kept stale, served within grace while Varnish revalidates
with the ETag); see deploy/varnish/shelfedge.vcl, which restricts both to trusted clients."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.purgers.base import send
from origin.core.purge_queue import PurgeMode

MAX_TAGS_PER_REQUEST = 100

HEADERS = {PurgeMode.HARD: "xkey-purge", PurgeMode.SOFT: "xkey-softpurge"}


class VarnishPurger:
    name = "varnish"
    max_tags_per_request = MAX_TAGS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, url: str, *, soft: bool = True) -> None:
        """`soft` False sends every purge hard."""
        self.client = client
        self.url = url.rstrip("/") + "/"
        self.soft = soft

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        header = HEADERS[mode if self.soft else PurgeMode.HARD]
        request = self.client.build_request("PURGE", self.url, headers={header: " ".join(tags)})
        await send(self.client, self.name, request)
