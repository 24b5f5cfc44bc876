"""Akamai Fast Purge v3 by cache tag: ``POST /ccu/v3/{invalidate|delete}/tag/{network}`` with
``{"objects": [tags]}``, signed with EdgeGrid (`invalidation.purgers.edgegrid`).

``delete`` evicts (hard); ``invalidate`` marks stale, so the edge revalidates with the origin
(soft; with ``soft_purge`` off every purge is a delete). Akamai answers 201 with
``{"httpStatus": 201, "purgeId": ...}``. The API's token buckets (100 requests refilling 50/s;
5,000 tags refilling 500/min, account-wide) are kept by the purge worker's `PurgeBudget`
(`invalidation.ratelimit.AKAMAI_REQUESTS`, `AKAMAI_TAGS`). A body is at most 50,000 bytes and a
cache tag at most 128 characters: `MAX_TAGS_PER_REQUEST` tags of that length fit, and a longer
tag is refused on its own (`PurgeRejected`, so the worker parks it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

import httpx

from invalidation.errors import PurgeRejected
from invalidation.purgers.base import send
from invalidation.purgers.edgegrid import (
    EdgeGridCredentials,
    authorization,
    edgegrid_timestamp,
    new_nonce,
)
from invalidation.settings import AkamaiSettings
from origin.core.purge_queue import PurgeMode

MAX_BODY_BYTES = 50_000
MAX_TAG_CHARS = 128
MAX_TAGS_PER_REQUEST = 300
"""300 tags of 128 characters make a body of about 40 KB: under the 50,000-byte limit."""

ACTIONS = {PurgeMode.HARD: "delete", PurgeMode.SOFT: "invalidate"}


class AkamaiPurger:
    name = "akamai"
    max_tags_per_request = MAX_TAGS_PER_REQUEST

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: AkamaiSettings,
        *,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = new_nonce,
    ) -> None:
        self.client = client
        self.base = settings.base_url.rstrip("/")
        self.network = settings.network
        self.soft = settings.soft_purge
        self.credentials = EdgeGridCredentials(
            settings.client_token, settings.client_secret, settings.access_token
        )
        self._clock = clock
        self._nonce = nonce

    def url(self, mode: PurgeMode) -> str:
        action = ACTIONS[mode if self.soft else PurgeMode.HARD]
        return f"{self.base}/ccu/v3/{action}/tag/{self.network}"

    async def purge(self, tags: Sequence[str], mode: PurgeMode = PurgeMode.HARD) -> None:
        if len(tags) > MAX_TAGS_PER_REQUEST:
            raise ValueError(f"at most {MAX_TAGS_PER_REQUEST} cache tags per Akamai purge")
        too_long = [t for t in tags if len(t) > MAX_TAG_CHARS]
        if too_long:
            raise PurgeRejected(
                self.name, f"cache tag over {MAX_TAG_CHARS} characters: {too_long[0]!r}"
            )
        body = json.dumps({"objects": list(tags)}, separators=(",", ":")).encode()
        if len(body) > MAX_BODY_BYTES:
            raise ValueError(f"Akamai purge body of {len(body)} bytes > {MAX_BODY_BYTES}")
        url = self.url(mode)
        auth = authorization(
            self.credentials,
            "POST",
            url,
            body,
            timestamp=edgegrid_timestamp(self._clock()),
            nonce=self._nonce(),
        )
        request = self.client.build_request(
            "POST",
            url,
            content=body,
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        await send(self.client, self.name, request)
