"""`invalidation.events`: parsing validates against the published schemas, table-driven."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fragments import topics
from invalidation.errors import BadEvent
from invalidation.events import (
    MAX_EVENT_BYTES,
    InventoryEvent,
    PriceEvent,
    encode_event,
    parse_event,
    topic_of,
)

INVENTORY = topics.INVENTORY.name
PRICE = topics.PRICE.name
WHEN = "2026-01-01T10:00:00+00:00"

STOCK: dict[str, Any] = {
    "event_id": "inv-1",
    "sku": "SKU-00001",
    "location": "store-001",
    "available": 7,
    "version": 3,
    "occurred_at": WHEN,
}
PRICE_DOC: dict[str, Any] = {
    "event_id": "price-1",
    "sku": "SKU-00001",
    "price": 1999,
    "currency": "EUR",
    "compare_at": 2499,
    "promo": "Free shipping",
    "version": 9,
    "occurred_at": WHEN,
}


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def without(doc: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != field}


@pytest.mark.parametrize(
    ("topic", "value", "expected"),
    [
        (INVENTORY, raw(STOCK), InventoryEvent("inv-1", "SKU-00001", "store-001", 7, 3, WHEN)),
        (
            INVENTORY,
            raw({**STOCK, "available": 0, "extra": "ignored"}),
            InventoryEvent("inv-1", "SKU-00001", "store-001", 0, 3, WHEN),
        ),
        (
            PRICE,
            raw(PRICE_DOC),
            PriceEvent("price-1", "SKU-00001", 1999, "EUR", 2499, "Free shipping", 9, WHEN),
        ),
        (
            PRICE,
            raw(without(without(PRICE_DOC, "compare_at"), "promo")),
            PriceEvent("price-1", "SKU-00001", 1999, "EUR", None, None, 9, WHEN),
        ),
        (
            PRICE,
            raw({**PRICE_DOC, "compare_at": None, "promo": ""}),
            PriceEvent("price-1", "SKU-00001", 1999, "EUR", None, None, 9, WHEN),
        ),
    ],
    ids=["stock", "stock-extra-field", "price", "price-minimal", "price-null-optionals"],
)
def test_valid_events_parse_to_typed_records(topic: str, value: bytes, expected: object) -> None:
    assert parse_event(topic, value) == expected


@pytest.mark.parametrize(
    ("topic", "value", "reason_has"),
    [
        (INVENTORY, b"{not json", "not JSON"),
        (INVENTORY, b"\xff\xfe\x00garbage", "not JSON"),
        (INVENTORY, raw([STOCK]), "data must be object"),
        (INVENTORY, raw(without(STOCK, "available")), "['available']"),
        (INVENTORY, raw(without(STOCK, "event_id")), "['event_id']"),
        (INVENTORY, raw({**STOCK, "available": "7"}), "data.available must be integer"),
        (INVENTORY, raw({**STOCK, "available": -1}), "data.available"),
        (INVENTORY, raw({**STOCK, "available": True}), "data.available must be integer"),
        (INVENTORY, raw({**STOCK, "version": 0}), "data.version"),
        (INVENTORY, raw({**STOCK, "sku": "-leading-dash"}), "data.sku"),
        (INVENTORY, raw({**STOCK, "location": "Store 1"}), "data.location"),
        (INVENTORY, raw({**STOCK, "occurred_at": "yesterday"}), "data.occurred_at"),
        (INVENTORY, raw({**STOCK, "event_id": ""}), "data.event_id"),
        (PRICE, raw({**PRICE_DOC, "currency": "eur"}), "data.currency"),
        (PRICE, raw({**PRICE_DOC, "price": 19.99}), "data.price must be integer"),
        (PRICE, raw({**PRICE_DOC, "compare_at": -5}), "data.compare_at"),
        (PRICE, raw({**PRICE_DOC, "promo": "x" * 65}), "data.promo"),
        (PRICE, raw(without(PRICE_DOC, "currency")), "['currency']"),
        ("exposures.v1", raw(STOCK), "unknown schema"),
        ("inventory.v2", raw(STOCK), "unknown schema"),
        (INVENTORY, None, "tombstone"),
        (PRICE, None, "tombstone"),
        (
            INVENTORY,
            raw({**STOCK, "padding": "x" * MAX_EVENT_BYTES}),
            f"> {MAX_EVENT_BYTES}",
        ),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "array-not-object",
        "missing-available",
        "missing-event-id",
        "available-string",
        "available-negative",
        "available-bool",
        "version-zero",
        "sku-pattern",
        "location-pattern",
        "occurred-at-format",
        "empty-event-id",
        "currency-lowercase",
        "price-float",
        "compare-at-negative",
        "promo-too-long",
        "price-missing-currency",
        "unknown-topic",
        "unknown-topic-version",
        "inventory-tombstone",
        "price-tombstone",
        "oversized",
    ],
)
def test_bad_events_raise_bad_event_naming_the_problem(
    topic: str, value: bytes | None, reason_has: str
) -> None:
    with pytest.raises(BadEvent) as caught:
        parse_event(topic, value)
    assert reason_has in caught.value.reason
    assert caught.value.retriable is False


def test_schema_violation_names_the_topic() -> None:
    with pytest.raises(BadEvent, match=r"^price\.v1 schema violation: data\.currency"):
        parse_event(PRICE, raw({**PRICE_DOC, "currency": "dollars"}))


@pytest.mark.parametrize("topic", [INVENTORY, PRICE])
def test_versions_beyond_exact_integer_range_are_rejected(topic: str) -> None:
    """Versions are compared as doubles by the apply scripts: above 2**53 - 1 two different
    versions can compare equal (and 1e20 is stored as "1e+20", which no reader parses), so
    such an event must be a dead letter, never a poison pill."""
    doc = STOCK if topic == INVENTORY else PRICE_DOC
    assert parse_event(topic, raw({**doc, "version": 2**53 - 1})).version == 2**53 - 1
    with pytest.raises(BadEvent, match=r"data\.version"):
        parse_event(topic, raw({**doc, "version": 2**53}))


def test_size_limit_is_inclusive() -> None:
    base = raw({**STOCK, "padding": ""})
    exact = raw({**STOCK, "padding": "x" * (MAX_EVENT_BYTES - len(base))})
    assert len(exact) == MAX_EVENT_BYTES
    assert parse_event(INVENTORY, exact).sku == "SKU-00001"


@pytest.mark.parametrize(
    "event",
    [
        InventoryEvent("a-1", "SKU-1", "warehouse-east", 0, 1, WHEN),
        PriceEvent("b-2", "SKU.2_x", 100, "USD", None, None, 2, WHEN),
        PriceEvent("c-3", "SKU-3", 100, "USD", 150, "2 for 1", 3, WHEN),
    ],
)
def test_encode_then_parse_round_trips(event: InventoryEvent | PriceEvent) -> None:
    assert parse_event(topic_of(event), encode_event(event)) == event
