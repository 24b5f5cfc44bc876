"""The edge's events waiting to leave for the origin: one buffering policy for every adapter
and both streams.

Two streams use it: experiment events (`fragments.wire_events.ExperimentEvent`: exposures and
attributed conversions, to ``POST /v1/events``) and the clickstream
(`fragments.clickstream.ClickEvent`: views, cart changes, purchases, searches, to
``POST /v1/clickstream``, `ORIGIN_CLICKSTREAM_PATH`). Each stream has its own buffer. Events are
buffered in memory, at most `MAX_BUFFERED_EVENTS`, and leave in batches of at most
`MAX_BATCH_EVENTS` (under the origin's limit of 500 per request) about
`FLUSH_DELAY_S` after the first one is queued, never on the response path. A full buffer drops
the new event. The origin's answer settles a batch (`EventBuffer.settle`): 202 sent; no answer
(status 0), 429 or 5xx back to the front of the buffer as far as room allows, the rest dropped;
any other status (a malformed batch) dropped. Every drop is counted by reason, never silent.
At-least-once: a batch whose answer was lost may be sent twice (the aggregator deduplicates by
event id). The adapter owns the timer and the HTTP call.

Pure: standard library and `fragments` only.
"""

from __future__ import annotations

import enum
import json
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

MAX_BUFFERED_EVENTS = 1000
MAX_BATCH_EVENTS = 200
FLUSH_DELAY_S = 0.5
CLICKSTREAM_FLUSH_DELAY_S = 0.1
"""The clickstream leaves sooner: a shopper's behaviour should move their segment within a
second (`edge.segment_refresh`)."""
ORIGIN_EVENTS_PATH = "/v1/events"
ORIGIN_CLICKSTREAM_PATH = "/v1/clickstream"


class WireEvent(Protocol):
    """An event with one wire form (`ExperimentEvent`, `ClickEvent`)."""

    def to_wire(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=WireEvent)
DROP_REASONS = ("buffer_full", "rejected", "undeliverable")

Outcome = Callable[[str, int], None]
"""Told ``("sent", n)`` or ``("dropped_<reason>", n)`` (metrics)."""


class Delivery(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    """Back in the buffer: try again later."""
    REJECTED = "rejected"


def delivery_of(status: int) -> Delivery:
    """What the origin's answer (0: none) means for a batch."""
    if status == 202:
        return Delivery.SENT
    if status in {0, 429} or status >= 500:
        return Delivery.RETRY
    return Delivery.REJECTED


def encode_batch(batch: Sequence[WireEvent]) -> bytes:
    """The ``POST /v1/events`` or ``POST /v1/clickstream`` body (``{"events": [...]}``)."""
    return json.dumps({"events": [event.to_wire() for event in batch]}).encode()


class EventBuffer(Generic[E]):
    """Bounded buffer of events with the drop accounting of the policy above."""

    def __init__(
        self,
        *,
        max_buffer: int = MAX_BUFFERED_EVENTS,
        max_batch: int = MAX_BATCH_EVENTS,
        on_outcome: Outcome | None = None,
    ) -> None:
        if not 1 <= max_batch <= max_buffer:
            raise ValueError(f"need 1 <= max_batch <= max_buffer, got {max_batch}, {max_buffer}")
        self.max_buffer = max_buffer
        self.max_batch = max_batch
        self.events: deque[E] = deque()
        self.sent = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._on_outcome = on_outcome

    def __len__(self) -> int:
        return len(self.events)

    def add(self, event: E) -> bool:
        """Queue an event; False (and counted) when the buffer is full."""
        if len(self.events) >= self.max_buffer:
            self._count("dropped_buffer_full", 1)
            return False
        self.events.append(event)
        return True

    def full_batch_waiting(self) -> bool:
        return len(self.events) >= self.max_batch

    def take(self) -> list[E]:
        """The next batch (oldest first), removed from the buffer."""
        return [self.events.popleft() for _ in range(min(self.max_batch, len(self.events)))]

    def settle(self, batch: list[E], status: int) -> Delivery:
        """Account for the origin's answer to ``batch`` (requeue, count); return what it meant."""
        delivery = delivery_of(status)
        if delivery is Delivery.SENT:
            self._count("sent", len(batch))
        elif delivery is Delivery.RETRY:
            self.give_back(batch)
        else:
            self._count("dropped_rejected", len(batch))
        return delivery

    def give_back(self, batch: list[E]) -> None:
        """Put an undelivered batch back in front, as far as room allows; count the rest."""
        room = self.max_buffer - len(self.events)
        kept = batch[:room] if room > 0 else []
        self.events.extendleft(reversed(kept))
        if len(kept) < len(batch):
            self._count("dropped_undeliverable", len(batch) - len(kept))

    def drop_all(self) -> None:
        """Give up on what is left (shutdown), counted as undeliverable."""
        if self.events:
            self._count("dropped_undeliverable", len(self.events))
            self.events.clear()

    def _count(self, outcome: str, n: int) -> None:
        if outcome == "sent":
            self.sent += n
        else:
            self.dropped[outcome.removeprefix("dropped_")] += n
        if self._on_outcome is not None:
            self._on_outcome(outcome, n)
