"""What was shown, when: exposures carry the shown bundle's version and content hash,
conversions the price the shopper saw; each only where it belongs."""

from __future__ import annotations

from typing import Any

import pytest

from fragments.wire_events import WireEventInvalid, validate_event

NOW = 1_700_000_000.0
EXPOSURE: dict[str, Any] = {
    "id": "evt-00000001", "type": "exposure", "experiment": "hero", "variant": "b",
    "visitor": "v1", "at": NOW,
}  # fmt: skip


def test_alignment_fields_round_trip() -> None:
    shown = {**EXPOSURE, "bundle_version": 7, "content_hash": "0123456789abcdef0123456789abcdef"}
    event = validate_event(shown, NOW)
    assert (event.bundle_version, event.content_hash) == (7, shown["content_hash"])
    assert event.to_wire() == shown
    bought = {**EXPOSURE, "type": "purchase", "value_cents": 2599, "price_cents": 2599}
    assert validate_event(bought, NOW).price_cents == 2599


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"bundle_version": 0}, "bundle_version"),
        ({"content_hash": "XYZ"}, "content_hash"),
        ({"price_cents": 10}, "price_cents"),
        ({"type": "click", "bundle_version": 3}, "bundle_version"),
        ({"type": "click", "price_cents": -1}, "price_cents"),
    ],
)
def test_alignment_fields_are_checked(change: dict[str, Any], field: str) -> None:
    with pytest.raises(WireEventInvalid) as caught:
        validate_event({**EXPOSURE, **change}, NOW)
    assert caught.value.field == f"event.{field}"
