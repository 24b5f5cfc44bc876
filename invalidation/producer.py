"""Produce inventory and price events to Kafka, keyed by SKU (so one SKU's events stay ordered)."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from invalidation.events import Event, encode_event, topic_of
from origin.core.kafka_security import KafkaSecurity


class EventProducer:
    """A thin, typed wrapper over an aiokafka producer."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str = "shelfedge-events",
        security: KafkaSecurity | None = None,
    ) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            linger_ms=5,
            **(security or KafkaSecurity()).client_kwargs(),
        )

    async def __aenter__(self) -> EventProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, event: Event) -> None:
        """Queue one event (delivery is confirmed by `flush`)."""
        await self._producer.send(topic_of(event), encode_event(event), key=event.sku.encode())

    async def send_all(self, events: Iterable[Event]) -> int:
        count = 0
        for event in events:
            await self.send(event)
            count += 1
        await self.flush()
        return count

    async def flush(self) -> None:
        await self._producer.flush()
