"""Where collected events go: Kafka through one AIOKafkaProducer owned by the app's lifespan.

`KafkaEventSink.start` returns at once and connects in the background, retrying until the
broker answers, so the origin starts (and serves everything else) while Kafka is down. Until
connected, and whenever a batch is not acknowledged within `send_timeout`, `send` raises
EventsUnavailable: the collector answers 503 and never hangs. Delivery is at-least-once (a
timed-out batch may still land; the aggregator deduplicates by event id). `NoKafkaSink` is the
sink when KAFKA_BOOTSTRAP_SERVERS is not set. Never logs event contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from origin.core.kafka_security import KafkaSecurity
from origin.events.errors import EventsUnavailable


class WireRecord(Protocol):
    """What a sink produces: an event that names its topic and visitor and encodes itself
    (`ExperimentEvent`, `fragments.clickstream.ClickEvent`)."""

    @property
    def topic(self) -> str: ...

    @property
    def visitor(self) -> str: ...

    def to_json(self) -> bytes: ...


log = logging.getLogger("shelfedge.events")

SEND_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 5.0
RECONNECT_DELAY_S = 2.0


class EventSink(Protocol):
    async def send(self, events: Sequence[WireRecord]) -> None:
        """Deliver every event or raise EventsUnavailable."""

    async def close(self) -> None: ...


class NoKafkaSink:
    """Kafka is not configured: every send is refused with a message saying so."""

    async def send(self, events: Sequence[WireRecord]) -> None:
        raise EventsUnavailable(
            "event collection is off: KAFKA_BOOTSTRAP_SERVERS is not set for the origin"
        )

    async def close(self) -> None:
        return None


class KafkaEventSink:
    """Produces events to their topics, keyed by visitor."""

    def __init__(
        self,
        bootstrap: str,
        *,
        send_timeout: float = SEND_TIMEOUT_S,
        client_id: str = "shelfedge-collector",
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security or KafkaSecurity()
        self.send_timeout = send_timeout
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._producer is not None

    def start(self) -> None:
        """Begin connecting in the background (returns immediately)."""
        if self._connector is None:
            self._connector = asyncio.create_task(self._connect(), name="kafka-event-sink")

    async def _connect(self) -> None:
        while not self._closed:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                acks="all",
                linger_ms=5,
                request_timeout_ms=int(self.send_timeout * 1000),
                **self.security.client_kwargs(),
            )
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await producer.start()
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning(
                    "event sink: kafka %s not reachable (%s); retrying", self.bootstrap, exc
                )
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    await producer.stop()
                await asyncio.sleep(RECONNECT_DELAY_S)
                continue
            self._producer = producer
            log.info("event sink connected to kafka %s", self.bootstrap)
            return

    async def wait_connected(self, within: float) -> bool:
        """Wait until connected (tests and start-up checks); False on timeout."""
        if self._connector is None:
            return self.connected
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await asyncio.shield(self._connector)
        return self.connected

    async def send(self, events: Sequence[WireRecord]) -> None:
        producer = self._producer
        if producer is None:
            raise EventsUnavailable(f"kafka {self.bootstrap} is not connected yet; retry shortly")
        try:
            async with asyncio.timeout(self.send_timeout):
                pending = [
                    await producer.send(e.topic, e.to_json(), key=e.visitor.encode())
                    for e in events
                ]
                await asyncio.gather(*pending)
        except TimeoutError as exc:
            raise EventsUnavailable(
                f"kafka did not acknowledge {len(events)} events within {self.send_timeout:g}s"
            ) from exc
        except KafkaError as exc:
            raise EventsUnavailable(f"kafka refused the events: {type(exc).__name__}") from exc

    async def close(self) -> None:
        self._closed = True
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._producer.stop()
            self._producer = None
