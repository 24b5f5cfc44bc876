"""`invalidation.events`: parsing validates against the published schemas, table-driven."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fragments import topics
from fragments.ids import ID_PATTERN, SKU_PATTERN, anchored
from invalidation.errors import BadEvent
from invalidation.events import (
    MAX_EVENT_BYTES,
    InventoryEvent,
    PriceEvent,
    encode_event,
    parse_event,
    topic_of,
)
from invalidation.schema_files import schema_of, schema_path
from tests.invalidation.support import WHEN

INVENTORY = topics.INVENTORY.name
PRICE = topics.PRICE.name

STOCK: dict[str, Any] = {
    "event_id": "inv-1",
    "sku": "SKU-00001",
    "location": "store-001",
    "available": 7,
    "version": 3,
    "occurred_at": WHEN.isoformat(),
}
PRICE_DOC: dict[str, Any] = {
    "event_id": "price-1",
    "sku": "SKU-00001",
    "price": 1999,
    "currency": "EUR",
    "compare_at": 2499,
    "promo": "Free shipping",
    "version": 9,
    "occurred_at": WHEN.isoformat(),
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
            PriceEvent("price-1", "SKU-00001", 1999, "EUR", 9, WHEN, 2499, "Free shipping"),
        ),
        (
            PRICE,
            raw(without(without(PRICE_DOC, "compare_at"), "promo")),
            PriceEvent("price-1", "SKU-00001", 1999, "EUR", 9, WHEN),
        ),
        (
            PRICE,
            raw({**PRICE_DOC, "compare_at": None, "promo": ""}),
            PriceEvent("price-1", "SKU-00001", 1999, "EUR", 9, WHEN),
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
        (INVENTORY, raw([STOCK]), "Expected `object`, got `array`"),
        (INVENTORY, raw(without(STOCK, "available")), "missing required field `available`"),
        (INVENTORY, raw(without(STOCK, "event_id")), "missing required field `event_id`"),
        (
            INVENTORY,
            raw({**STOCK, "available": "7"}),
            "Expected `int`, got `str` - at `$.available`",
        ),
        (INVENTORY, raw({**STOCK, "available": -1}), "Expected `int` >= 0 - at `$.available`"),
        (
            INVENTORY,
            raw({**STOCK, "available": True}),
            "Expected `int`, got `bool` - at `$.available`",
        ),
        (INVENTORY, raw({**STOCK, "version": 0}), "`$.version`"),
        (INVENTORY, raw({**STOCK, "sku": "-leading-dash"}), "`$.sku`"),
        (INVENTORY, raw({**STOCK, "location": "Store 1"}), "`$.location`"),
        (INVENTORY, raw({**STOCK, "occurred_at": "yesterday"}), "`$.occurred_at`"),
        (INVENTORY, raw({**STOCK, "event_id": ""}), "`$.event_id`"),
        (PRICE, raw({**PRICE_DOC, "currency": "eur"}), "`$.currency`"),
        (PRICE, raw({**PRICE_DOC, "price": 19.99}), "Expected `int`, got `float` - at `$.price`"),
        (PRICE, raw({**PRICE_DOC, "compare_at": -5}), "`$.compare_at`"),
        (PRICE, raw({**PRICE_DOC, "promo": "x" * 65}), "`$.promo`"),
        (PRICE, raw(without(PRICE_DOC, "currency")), "missing required field `currency`"),
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
    with pytest.raises(BadEvent, match=r"^price\.v1 schema violation: .* - at `\$\.currency`$"):
        parse_event(PRICE, raw({**PRICE_DOC, "currency": "dollars"}))


@pytest.mark.parametrize("topic", [INVENTORY, PRICE])
def test_versions_beyond_exact_integer_range_are_rejected(topic: str) -> None:
    """Versions are compared as doubles by the apply scripts: above 2**53 - 1 two different
    versions can compare equal (and 1e20 is stored as "1e+20", which no reader parses), so
    such an event must be a dead letter, never a poison pill."""
    doc = STOCK if topic == INVENTORY else PRICE_DOC
    assert parse_event(topic, raw({**doc, "version": 2**53 - 1})).version == 2**53 - 1
    with pytest.raises(BadEvent, match=r"`\$\.version`"):
        parse_event(topic, raw({**doc, "version": 2**53}))


def test_size_limit_is_inclusive() -> None:
    base = raw({**STOCK, "padding": ""})
    exact = raw({**STOCK, "padding": "x" * (MAX_EVENT_BYTES - len(base))})
    assert len(exact) == MAX_EVENT_BYTES
    event = parse_event(INVENTORY, exact)
    assert isinstance(event, InventoryEvent)
    assert event.sku == "SKU-00001"


@pytest.mark.parametrize(
    "event",
    [
        InventoryEvent("a-1", "SKU-1", "warehouse-east", 0, 1, WHEN),
        PriceEvent("b-2", "SKU.2_x", 100, "USD", 2, WHEN),
        PriceEvent("c-3", "SKU-3", 100, "USD", 3, WHEN, 150, "2 for 1"),
    ],
)
def test_encode_then_parse_round_trips(event: InventoryEvent | PriceEvent) -> None:
    assert parse_event(topic_of(event), encode_event(event)) == event


@pytest.mark.parametrize("topic", [INVENTORY, PRICE])
def test_published_schema_files_are_generated_from_the_event_types(topic: str) -> None:
    """The event types are the one definition; the committed JSON Schemas must match them."""
    committed = json.loads(schema_path(topic).read_text(encoding="utf-8"))
    assert committed == schema_of(topic), "run `python -m invalidation.schema_files`"
    assert committed["$id"].endswith(f"/{topic}.json")
    assert committed["additionalProperties"] is True, "the evolution rule: unknown fields pass"


@pytest.mark.parametrize(
    ("topic", "doc"),
    [
        (INVENTORY, {**STOCK, "sku": "SKU-00001\n"}),
        (INVENTORY, {**STOCK, "location": "store-001\n"}),
        (PRICE, {**PRICE_DOC, "currency": "EUR\n"}),
    ],
    ids=["sku", "location", "currency"],
)
def test_a_trailing_newline_is_not_part_of_an_identifier(topic: str, doc: dict[str, Any]) -> None:
    with pytest.raises(BadEvent, match="schema violation"):
        parse_event(topic, raw(doc))


_IDENTIFIER_TEXT = st.text(alphabet="aZ09_.-\n é", max_size=70)


@settings(max_examples=300, deadline=None)
@given(sku=_IDENTIFIER_TEXT, location=_IDENTIFIER_TEXT, currency=st.text("ABZaz\n", max_size=4))
def test_identifiers_are_checked_by_their_published_patterns_every_time(
    sku: str, location: str, currency: str
) -> None:
    """SKU, location and currency are checked once per distinct value (remembered), not by
    msgspec: the first and the remembered check accept exactly what the published pattern
    accepts, and name the field when they refuse."""
    cases = [
        (INVENTORY, {**STOCK, "sku": sku}, "sku", sku, SKU_PATTERN),
        (INVENTORY, {**STOCK, "location": location}, "location", location, ID_PATTERN),
        (PRICE, {**PRICE_DOC, "currency": currency}, "currency", currency, "[A-Z]{3}"),
    ]
    for topic, doc, field, value, pattern in cases:
        published = schema_of(topic)["properties"][field]["pattern"]
        assert published == anchored(pattern)
        valid = re.search(published, value) is not None
        for _ in range(2):
            if valid:
                assert getattr(parse_event(topic, raw(doc)), field) == value
            else:
                with pytest.raises(BadEvent, match=rf"schema violation: .* - at `\$\.{field}`$"):
                    parse_event(topic, raw(doc))
