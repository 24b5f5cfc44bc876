"""`invalidation.records.DeadLetter.headers`: where a dead letter came from and why."""

from __future__ import annotations

import pytest

from invalidation.records import DeadLetter, Record

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
    ]


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
