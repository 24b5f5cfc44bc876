"""Inventory and price events: typed records, and parsing that validates against the published
JSON Schemas (``invalidation/schemas/*.json``, the one definition of each topic's shape).

Anything that cannot be applied raises `BadEvent` with a reason that names the problem; the
consumer dead-letters it. Never performs I/O beyond reading the schema files once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from fragments import topics
from invalidation.errors import BadEvent

SCHEMA_DIR = Path(__file__).with_name("schemas")
MAX_EVENT_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class InventoryEvent:
    """Units available of one SKU at one location."""

    event_id: str
    """Unique id; redeliveries carry the same id (dedupe)."""
    sku: str
    location: str
    available: int
    version: int
    """Per-SKU sequence (gated per SKU and location)."""
    occurred_at: str
    """RFC 3339 time the change happened at the source."""


@dataclass(frozen=True, slots=True)
class PriceEvent:
    """The selling price of one SKU."""

    event_id: str
    sku: str
    price_cents: int
    currency: str
    compare_at_cents: int | None
    promo: str | None
    version: int
    """Per-SKU price sequence."""
    occurred_at: str


Event = InventoryEvent | PriceEvent


@cache
def _validator(topic: str) -> Callable[[Any], Any]:
    schema = json.loads((SCHEMA_DIR / f"{topic}.json").read_text(encoding="utf-8"))
    return fastjsonschema.compile(schema, formats={"date-time": _is_datetime})


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def parse_event(topic: str, value: bytes | None) -> Event:
    """Validate and type one record value from `topic`."""
    if topic not in (topics.INVENTORY.name, topics.PRICE.name):
        raise BadEvent(f"unknown schema: no schema for topic {topic!r}")
    if value is None:
        raise BadEvent("empty record value (tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        raise BadEvent(f"oversized event: {len(value)} bytes > {MAX_EVENT_BYTES}")
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadEvent(f"not JSON: {exc}") from exc
    try:
        _validator(topic)(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise BadEvent(f"{topic} schema violation: {exc.message}") from exc
    if topic == topics.INVENTORY.name:
        return InventoryEvent(
            event_id=doc["event_id"],
            sku=doc["sku"],
            location=doc["location"],
            available=doc["available"],
            version=doc["version"],
            occurred_at=doc["occurred_at"],
        )
    return PriceEvent(
        event_id=doc["event_id"],
        sku=doc["sku"],
        price_cents=doc["price"],
        currency=doc["currency"],
        compare_at_cents=doc.get("compare_at"),
        promo=doc.get("promo") or None,
        version=doc["version"],
        occurred_at=doc["occurred_at"],
    )


def encode_event(event: Event) -> bytes:
    """The wire JSON of an event (producers, tests, the demo generator)."""
    if isinstance(event, InventoryEvent):
        doc: dict[str, Any] = {
            "event_id": event.event_id,
            "sku": event.sku,
            "location": event.location,
            "available": event.available,
            "version": event.version,
            "occurred_at": event.occurred_at,
        }
    else:
        doc = {
            "event_id": event.event_id,
            "sku": event.sku,
            "price": event.price_cents,
            "currency": event.currency,
            "compare_at": event.compare_at_cents,
            "promo": event.promo,
            "version": event.version,
            "occurred_at": event.occurred_at,
        }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def topic_of(event: Event) -> str:
    return topics.INVENTORY.name if isinstance(event, InventoryEvent) else topics.PRICE.name
