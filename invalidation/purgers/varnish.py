"""Varnish xkey purge: a ``PURGE`` request carrying ``xkey-purge: tag1 tag2`` (see
deploy/varnish/shelfedge.vcl, which restricts it to trusted clients)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from invalidation.purgers.base import send

MAX_TAGS_PER_REQUEST = 100


class VarnishPurger:
    name = "varnish"
    max_tags_per_request = MAX_TAGS_PER_REQUEST

    def __init__(self, client: httpx.AsyncClient, url: str, *, soft: bool = False) -> None:
        self.client = client
        self.url = url.rstrip("/") + "/"
        self.header = "xkey-softpurge" if soft else "xkey-purge"

    async def purge(self, tags: Sequence[str]) -> None:
        request = self.client.build_request(
            "PURGE", self.url, headers={self.header: " ".join(tags)}
        )
        await send(self.client, self.name, request)
