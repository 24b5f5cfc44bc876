"""Experiment events leave the local edge in batches, in the background, never on the response
path.

`EventBatcher.add` appends to a bounded in-memory buffer and returns at once; a background task
POSTs ``{"events": [...]}`` to the origin's ``/v1/events`` every `flush_interval` seconds, or
sooner when `max_batch` events are waiting. A full buffer drops the new event; a batch the
origin rejects as malformed (4xx other than 429) is dropped; a batch that could not be
delivered (network error, 429, 5xx) goes back to the front of the buffer as far as room allows
and the rest is dropped. Every drop is counted by reason (`dropped`), never silent. At-least-once:
a batch whose answer was lost may be sent twice (the aggregator deduplicates by event id).
Every POST is signed (`fragments.batch_signing`) with the newest of `keys`, freshly per
attempt, so a retried batch has a new batch id and timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from fragments.batch_signing import DEV_EVENT_KEYS, SigningKeys, sign_batch

log = logging.getLogger("shelfedge.edge.events")

EVENTS_PATH = "/v1/events"
DEFAULT_MAX_BATCH = 200
DEFAULT_FLUSH_INTERVAL_S = 1.0
DEFAULT_MAX_BUFFER = 10_000


class EventBatcher:
    """Bounded buffer + background sender."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        origin_url: str,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL_S,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        on_outcome: Callable[[str, int], None] | None = None,
        keys: SigningKeys | None = None,
    ) -> None:
        if not 1 <= max_batch <= max_buffer:
            raise ValueError(f"need 1 <= max_batch <= max_buffer, got {max_batch}, {max_buffer}")
        self.client = client
        self.keys = keys or SigningKeys.parse(DEV_EVENT_KEYS)
        self.url = origin_url.rstrip("/") + EVENTS_PATH
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.max_buffer = max_buffer
        self.buffer: deque[Mapping[str, Any]] = deque()
        self.sent = 0
        self.dropped: dict[str, int] = {"buffer_full": 0, "rejected": 0, "undeliverable": 0}
        self._on_outcome = on_outcome
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def add(self, event: Mapping[str, Any]) -> bool:
        """Queue an event; False (and counted) when the buffer is full."""
        if len(self.buffer) >= self.max_buffer:
            self._count("buffer_full", 1)
            return False
        self.buffer.append(event)
        if len(self.buffer) >= self.max_batch:
            self._wake.set()
        if self._task is None and not self._closing:
            self._task = asyncio.create_task(self._run(), name="edge-event-batcher")
        return True

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            while self.buffer and not self._closing:
                if not await self.flush_one():
                    break

    async def flush_one(self) -> bool:
        """Send one batch; True when it was accepted or dropped (go on), False to back off."""
        batch = [self.buffer.popleft() for _ in range(min(self.max_batch, len(self.buffer)))]
        if not batch:
            return True
        try:
            body = json.dumps({"events": batch}, separators=(",", ":")).encode()
            headers = {"content-type": "application/json"}
            headers.update(sign_batch(self.keys, body, time.time()))
            response = await self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning(
                "events: origin unreachable (%s); %d events back in the buffer", exc, len(batch)
            )
            self._requeue(batch)
            return False
        if response.status_code == 202:
            self.sent += len(batch)
            if self._on_outcome is not None:
                self._on_outcome("sent", len(batch))
            return True
        if response.status_code == 429 or response.status_code >= 500:
            self._requeue(batch)
            return False
        log.warning(
            "events: origin rejected a batch of %d (HTTP %d): dropped",
            len(batch),
            response.status_code,
        )
        self._count("rejected", len(batch))
        return True

    def _requeue(self, batch: list[Mapping[str, Any]]) -> None:
        room = self.max_buffer - len(self.buffer)
        kept = batch[:room] if room > 0 else []
        self.buffer.extendleft(reversed(kept))
        if len(kept) < len(batch):
            self._count("undeliverable", len(batch) - len(kept))

    def _count(self, reason: str, n: int) -> None:
        self.dropped[reason] += n
        if self._on_outcome is not None:
            self._on_outcome(f"dropped_{reason}", n)

    async def drain(self) -> None:
        """Send what is buffered now (tests, shutdown); stops at the first failed batch."""
        while self.buffer:
            if not await self.flush_one():
                return

    async def close(self) -> None:
        """Stop the background task, then try once to send what is left (counted if not)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.drain()
        if self.buffer:
            self._count("undeliverable", len(self.buffer))
            self.buffer.clear()
