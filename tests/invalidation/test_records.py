"""`invalidation.records`: where a dead letter came from and why; records decoded as they arrive."""

from __future__ import annotations

import pytest

from invalidation.events import InventoryEvent, encode_event
from invalidation.records import DeadLetter, DecodedRecords, Record, reason_class
from tests.invalidation.support import WHEN

RECORD = Record(
    topic="inventory.v1",
    partition=4,
    offset=1234567,
    key=b"SKU-00001",
    value=b"{not json",
    timestamp_ms=1767225600000,
)
MAX_REASON = 1024


@pytest.mark.parametrize(
    ("reason", "expected_reason"),
    [
        ("not JSON: Expecting value", b"not JSON: Expecting value"),
        ("unknown sku 'SKU-\u00e9'", "unknown sku 'SKU-\u00e9'".encode()),
        ("x" * 5000, b"x" * MAX_REASON),
    ],
    ids=["ascii", "non-ascii", "long"],
)
def test_headers_name_source_coordinates_and_reason(reason: str, expected_reason: bytes) -> None:
    assert DeadLetter(RECORD, reason).headers() == [
        ("shelfedge.source.topic", b"inventory.v1"),
        ("shelfedge.source.partition", b"4"),
        ("shelfedge.source.offset", b"1234567"),
        ("shelfedge.source.timestamp", b"1767225600000"),
        ("shelfedge.error.reason", expected_reason),
        ("shelfedge.error.class", reason_class(reason).encode()),
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("unknown schema: no schema for topic 'x'", "unknown_schema"),
        ("empty record value (tombstone)", "tombstone"),
        ("oversized event: 20000 bytes > 16384", "oversized"),
        ("not JSON: Expecting value", "not_json"),
        ("price.v1 schema violation: Expected `int`, got `str` - at `$.price`", "schema_violation"),
        ("unknown sku 'SKU-X': not in the catalog", "unknown_sku"),
        ("something else", "other"),
    ],
)
def test_reason_classes(reason: str, expected: str) -> None:
    assert reason_class(reason) == expected


def test_the_source_records_trace_context_travels_with_its_dead_letter() -> None:
    traced = RECORD._replace(headers=(("traceparent", b"00-ab-cd-01"), ("shelfedge.x", b"y")))
    headers = DeadLetter(traced, "not JSON: x").headers()
    assert headers[0] == ("traceparent", b"00-ab-cd-01")
    assert ("shelfedge.x", b"y") not in headers


@pytest.mark.parametrize("prefix", [MAX_REASON - 1, MAX_REASON - 2, MAX_REASON - 3])
def test_truncated_reason_stays_valid_utf8(prefix: int) -> None:
    """Cutting the reason at 1024 bytes must not split a multi-byte character."""
    reason = "a" * prefix + "\u20ac" * 10  # 3 bytes each: the cut lands inside one
    value = dict(DeadLetter(RECORD, reason).headers())["shelfedge.error.reason"]
    assert len(value) <= MAX_REASON
    assert value.decode("utf-8").startswith("a" * prefix)


def test_tombstone_record_headers() -> None:
    tombstone = Record("price.v1", 0, 0, None, None, 0)
    headers = dict(DeadLetter(tombstone, "empty record value (tombstone)").headers())
    assert headers["shelfedge.source.topic"] == b"price.v1"
    assert headers["shelfedge.source.offset"] == b"0"


def _valid(partition: int, offset: int) -> Record:
    event = InventoryEvent(f"e{offset}", "SKU-00001", "store-001", offset, offset + 1, WHEN)
    return RECORD._replace(partition=partition, offset=offset, value=encode_event(event))


def test_decoded_records_keep_every_record_and_align_events_with_valid_ones() -> None:
    records = [_valid(0, 1), RECORD, _valid(1, 2)]
    decoded = DecodedRecords.of(records[:2])
    decoded.add(records[2:])
    assert len(decoded) == 3
    assert decoded.records == records
    assert decoded.valid == [records[0], records[2]]
    assert [e.event_id for e in decoded.events] == ["e1", "e2"]
    assert [(d.record, d.reason.split(":")[0]) for d in decoded.dead_letters] == [
        (RECORD, "not JSON")
    ]


def test_keeping_drops_the_records_of_other_partitions_with_what_they_decoded_to() -> None:
    decoded = DecodedRecords.of([_valid(0, 1), RECORD, _valid(1, 2), _valid(4, 3)])
    kept = decoded.keeping(lambda r: r.partition != 4)
    assert [(r.partition, r.offset) for r in kept.records] == [(0, 1), (1, 2)]
    assert [r.offset for r in kept.valid] == [1, 2]
    assert [e.event_id for e in kept.events] == ["e1", "e2"]
    assert kept.dead_letters == []
    assert len(decoded) == 4  # the original is unchanged
