"""Produce inventory and price events to Kafka, keyed by SKU (so one SKU's events stay ordered),
with the W3C trace context in the record headers when tracing is on (`invalidation.tracing`)."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanKind

from invalidation.events import Event, encode_event, topic_of
from invalidation.tracing import record_headers, tracer, tracing_on
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
        """Queue one event (delivery is confirmed by `flush`). With tracing on, the record
        carries the trace context of a ``shelfedge.event.produce`` span in its headers."""
        topic = topic_of(event)
        if not tracing_on():
            await self._producer.send(topic, encode_event(event), key=event.sku.encode())
            return
        with tracer.start_as_current_span(
            "shelfedge.event.produce",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "shelfedge.event_id": event.event_id,
                "shelfedge.sku": event.sku,
            },
        ):
            await self._producer.send(
                topic, encode_event(event), key=event.sku.encode(), headers=record_headers()
            )

    async def send_all(self, events: Iterable[Event]) -> int:
        count = 0
        for event in events:
            await self.send(event)
            count += 1
        await self.flush()
        return count

    async def flush(self) -> None:
        await self._producer.flush()
