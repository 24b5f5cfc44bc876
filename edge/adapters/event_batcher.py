"""The local edge's events leave in batches, in the background, never on the response path: the
asyncio and httpx side of `edge.event_buffer`'s policy.

One batcher per stream: experiment events to the origin's ``/v1/events`` (the default `path`),
the clickstream to ``/v1/clickstream``. `EventBatcher.add` queues in the bounded `EventBuffer`
and returns at once; a background task POSTs a batch to `path` every `flush_interval` seconds,
or sooner when
`max_batch` events are waiting, and lets the buffer settle it (requeue, drop, count). An origin
that cannot be reached is settled as no answer (status 0). Every POST is signed
(`fragments.batch_signing`) with the newest of `keys`, freshly per attempt, so a retried batch
has a new batch id and timestamp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Generic

import httpx

from edge.event_buffer import (
    FLUSH_DELAY_S,
    MAX_BATCH_EVENTS,
    MAX_BUFFERED_EVENTS,
    ORIGIN_EVENTS_PATH,
    Delivery,
    E,
    EventBuffer,
    Outcome,
    encode_batch,
)
from fragments.batch_signing import DEV_EVENT_KEYS, SigningKeys, sign_batch

log = logging.getLogger("shelfedge.edge.events")


class EventBatcher(Generic[E]):
    """Bounded buffer + background sender."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        origin_url: str,
        *,
        max_batch: int = MAX_BATCH_EVENTS,
        flush_interval: float = FLUSH_DELAY_S,
        max_buffer: int = MAX_BUFFERED_EVENTS,
        on_outcome: Outcome | None = None,
        keys: SigningKeys | None = None,
        path: str = ORIGIN_EVENTS_PATH,
    ) -> None:
        self.client = client
        self.keys = keys or SigningKeys.parse(DEV_EVENT_KEYS)
        self.url = origin_url.rstrip("/") + path
        self.flush_interval = flush_interval
        self.pending: EventBuffer[E] = EventBuffer(
            max_buffer=max_buffer, max_batch=max_batch, on_outcome=on_outcome
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def buffer(self) -> deque[E]:
        return self.pending.events

    @property
    def sent(self) -> int:
        return self.pending.sent

    @property
    def dropped(self) -> dict[str, int]:
        return self.pending.dropped

    def add(self, event: E) -> bool:
        """Queue an event; False (and counted) when the buffer is full."""
        if not self.pending.add(event):
            return False
        if self.pending.full_batch_waiting():
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
            while self.pending and not self._closing:
                if not await self.flush_one():
                    break

    async def flush_one(self) -> bool:
        """Send one batch; True when it was accepted or dropped (go on), False to back off."""
        batch = self.pending.take()
        if not batch:
            return True
        try:
            body = encode_batch(batch)
            headers = {"content-type": "application/json"}
            headers.update(sign_batch(self.keys, body, time.time()))
            response = await self.client.post(self.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            log.warning(
                "events: origin unreachable (%s); %d events back in the buffer", exc, len(batch)
            )
            status = 0
        delivery = self.pending.settle(batch, status)
        if delivery is Delivery.REJECTED:
            log.warning(
                "events: origin rejected a batch of %d (HTTP %d): dropped", len(batch), status
            )
        return delivery is not Delivery.RETRY

    async def drain(self) -> None:
        """Send what is buffered now (tests, shutdown); stops at the first failed batch."""
        while self.pending:
            if not await self.flush_one():
                return

    async def close(self) -> None:
        """Stop the background task, then try once to send what is left (counted if not)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.drain()
        self.pending.drop_all()
