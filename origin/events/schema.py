"""The experiment event as the origin takes it: `fragments.wire_events`, with origin's errors.

The event type, its wire format, field names, limits and patterns are defined once in
`fragments.wire_events` (the edge builds the same `ExperimentEvent` values it sends); this module
re-exports them and translates `WireEventInvalid` into the collector's `EventRejected`, so the
origin's exception tree stays its own. Validation is strict and names the field; decoding from
Kafka trusts only what validation would accept. Pure: it never performs I/O.
"""

from __future__ import annotations

from typing import Any

from fragments.wire_events import (
    CONVERSION_TYPES,
    EVENT_TYPES,
    MAX_FUTURE_SECONDS,
    MAX_PAST_SECONDS,
    MAX_VALUE_CENTS,
    EventType,
    ExperimentEvent,
    WireEventInvalid,
    validate_event,
)
from fragments.wire_events import decode_event as _decode_wire
from origin.events.errors import EventRejected

__all__ = [
    "CONVERSION_TYPES",
    "EVENT_TYPES",
    "MAX_FUTURE_SECONDS",
    "MAX_PAST_SECONDS",
    "MAX_VALUE_CENTS",
    "EventType",
    "ExperimentEvent",
    "decode_event",
    "parse_event",
]


def parse_event(raw: Any, now: float, where: str = "event") -> ExperimentEvent:
    """Validate one event object; EventRejected names the first bad field."""
    try:
        return validate_event(raw, now, where)
    except WireEventInvalid as exc:
        raise EventRejected(exc.field, exc.reason) from exc


def decode_event(value: bytes | None) -> ExperimentEvent:
    """An event from a Kafka record value (a wide time window, so old records replay)."""
    try:
        return _decode_wire(value)
    except WireEventInvalid as exc:
        raise EventRejected(exc.field, exc.reason) from exc
