"""Event validation names the event and the field; the wire format round-trips."""

from __future__ import annotations

from typing import Any

import pytest

from fragments import topics
from origin.events.errors import EventRejected
from origin.events.schema import decode_event, parse_event

NOW = 1_800_000_000.0
GOOD: dict[str, Any] = {
    "id": "evt-0000001",
    "type": "purchase",
    "experiment": "hero",
    "variant": "compact",
    "visitor": "0123456789abcdef0123456789abcdef",
    "at": NOW - 10,
    "slot": "home-hero",
    "sku": "SKU-00001",
    "segment": "everyone",
    "value_cents": 2599,
}

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown type", {"type": "view"}, "ev.type"),
    ("missing type", {"type": None}, "ev.type"),
    ("short id", {"id": "x"}, "ev.id"),
    ("id with spaces", {"id": "evt 000001"}, "ev.id"),
    ("missing experiment", {"experiment": None}, "ev.experiment"),
    ("bad experiment", {"experiment": "Hero!"}, "ev.experiment"),
    ("bad variant", {"variant": ""}, "ev.variant"),
    ("bad visitor", {"visitor": "a b"}, "ev.visitor"),
    ("too old", {"at": NOW - 8 * 86400}, "ev.at"),
    ("future", {"at": NOW + 3600}, "ev.at"),
    ("at not a number", {"at": "now"}, "ev.at"),
    ("at bool", {"at": True}, "ev.at"),
    ("bad slot", {"slot": "Home Hero"}, "ev.slot"),
    ("bad sku", {"sku": "-x"}, "ev.sku"),
    ("negative value", {"value_cents": -1}, "ev.value_cents"),
    ("float value", {"value_cents": 1.5}, "ev.value_cents"),
    ("value on a click", {"type": "click"}, "ev.value_cents"),
    ("unknown field", {"email": "a@b.c"}, "ev.email"),
]


@pytest.mark.parametrize(("case", "patch", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_events_name_the_field(case: str, patch: dict[str, Any], field: str) -> None:
    with pytest.raises(EventRejected) as caught:
        parse_event({**GOOD, **patch}, NOW, "ev")
    assert caught.value.field == field


def test_not_an_object() -> None:
    with pytest.raises(EventRejected, match="JSON object"):
        parse_event(["x"], NOW, "events[3]")


def test_valid_event_round_trips_and_routes_by_type() -> None:
    event = parse_event(GOOD, NOW)
    exposure = parse_event({**GOOD, "type": "exposure", "value_cents": None}, NOW)
    minimal = parse_event(
        {k: GOOD[k] for k in ("id", "type", "experiment", "variant", "visitor")}, NOW
    )

    assert decode_event(event.to_json()) == event
    assert event.topic == topics.CONVERSIONS.name
    assert exposure.topic == topics.EXPOSURES.name
    assert minimal.at == NOW
    assert minimal.slot is None


@pytest.mark.parametrize("value", [None, b"", b"{", b"[]", b'{"type": "exposure"}'])
def test_undecodable_records(value: bytes | None) -> None:
    with pytest.raises(EventRejected):
        decode_event(value)
