"""Inventory and price events: the one definition of each topic's shape, and its parsing.

The event types below are the schema: their field types and constraints validate every record
(msgspec, in C) and generate the published JSON Schemas (``invalidation/schemas/*.json``,
written by ``python -m invalidation.schema_files``; a test keeps them in step).

Anything that cannot be applied raises `BadEvent` with a reason that names the problem and the
field; the consumer dead-letters it. Unknown fields are ignored (the evolution rule: new optional
fields are fine). Pure: never performs I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

from fragments import topics
from fragments.ids import ID_PATTERN, SKU_PATTERN, anchored
from invalidation.errors import BadEvent

MAX_EVENT_BYTES = 16 * 1024
MAX_VERSION = 2**53 - 1
"""Versions are compared as doubles in Redis: above 2**53 - 1 two versions can compare equal."""
MAX_CENTS = 100_000_000_000

EventId = Annotated[
    str,
    Meta(min_length=1, max_length=128, description="Unique id; redeliveries carry the same id."),
]
Sku = Annotated[str, Meta(pattern=anchored(SKU_PATTERN))]
Location = Annotated[str, Meta(pattern=anchored(ID_PATTERN))]
Cents = Annotated[int, Meta(ge=0, le=MAX_CENTS)]
Version = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
OccurredAt = Annotated[
    datetime, Meta(tz=True, description="RFC 3339 time the change happened at the source.")
]


class InventoryEvent(Struct, frozen=True):
    """Units available of one SKU at one location. Kafka key: the SKU."""

    event_id: EventId
    sku: Sku
    location: Location
    available: Annotated[int, Meta(ge=0, le=1_000_000_000, description="Units available.")]
    version: Annotated[
        Version,
        Meta(
            description="Per-SKU sequence; a version not above the one applied for this SKU and "
            "location is stale. At most 2^53 - 1: versions are compared as doubles in Redis."
        ),
    ]
    occurred_at: OccurredAt


class PriceEvent(Struct, frozen=True):
    """The selling price of one SKU. Kafka key: the SKU. Amounts in minor units (cents)."""

    event_id: EventId
    sku: Sku
    price_cents: Annotated[Cents, Meta(description="Selling price in minor units.")] = (
        msgspec.field(name="price")
    )
    currency: Annotated[str, Meta(pattern=anchored("[A-Z]{3}"), description="ISO 4217 code.")]
    version: Annotated[
        Version,
        Meta(
            description="Per-SKU price sequence. At most 2^53 - 1: versions are compared as "
            "doubles in Redis."
        ),
    ]
    occurred_at: OccurredAt
    compare_at_cents: (
        Annotated[Cents, Meta(description="Reference price shown struck through.")] | None
    ) = msgspec.field(default=None, name="compare_at")
    promo: Annotated[str, Meta(max_length=64, description="Promotion text.")] | None = None

    def __post_init__(self) -> None:
        if self.promo == "":
            msgspec.structs.force_setattr(self, "promo", None)  # no promo, one spelling


Event = InventoryEvent | PriceEvent

EVENT_TYPES: dict[str, type[Event]] = {
    topics.INVENTORY.name: InventoryEvent,
    topics.PRICE.name: PriceEvent,
}
"""The event type of each source topic (its schema)."""

_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(kind) for topic, kind in EVENT_TYPES.items()
}
_ENCODER = msgspec.json.Encoder()


def parse_event(topic: str, value: bytes | None) -> Event:
    """Validate and type one record value from `topic`."""
    decoder = _DECODERS.get(topic)
    if decoder is None:
        raise BadEvent(f"unknown schema: no schema for topic {topic!r}")
    if value is None:
        raise BadEvent("empty record value (tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        raise BadEvent(f"oversized event: {len(value)} bytes > {MAX_EVENT_BYTES}")
    try:
        event: Event = decoder.decode(value)
    except msgspec.ValidationError as exc:
        raise BadEvent(f"{topic} schema violation: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadEvent(f"not JSON: {exc}") from exc
    return event


def encode_event(event: Event) -> bytes:
    """The wire JSON of an event (producers, tests, the demo generator)."""
    return _ENCODER.encode(event)


def topic_of(event: Event) -> str:
    return topics.INVENTORY.name if isinstance(event, InventoryEvent) else topics.PRICE.name
