"""The experiment event: what the edge and storefront report, validated, and its wire format.

Types: ``exposure`` (a shopper saw a variant) goes to `fragments.topics.EXPOSURES`; ``click``,
``add_to_cart`` and ``purchase`` (conversions) go to `fragments.topics.CONVERSIONS`. Both are
keyed by visitor so one visitor's events stay ordered. Every event has an id (the aggregator
deduplicates by it), an experiment and variant, a pseudonymous visitor id and a time; slot,
SKU, segment and a purchase value are optional. Validation is strict and names the field;
decoding from Kafka trusts only what validation would accept. Pure: it never performs I/O.

Wire format (JSON, one event per record)::

    {"id": "...", "type": "purchase", "experiment": "hero-layout", "variant": "b",
     "visitor": "3f2a...", "at": 1763856000.5, "slot": "home-hero", "sku": "SKU-1",
     "segment": "everyone", "value_cents": 2599}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fragments import topics
from fragments.errors import JsonRejected
from fragments.strict_json import loads
from origin.events.errors import EventRejected

EventType = Literal["exposure", "click", "add_to_cart", "purchase"]
EVENT_TYPES: tuple[EventType, ...] = ("exposure", "click", "add_to_cart", "purchase")
CONVERSION_TYPES: tuple[EventType, ...] = ("click", "add_to_cart", "purchase")
MAX_PAST_SECONDS = 7 * 24 * 3600
"""Events older than this are rejected (their dedupe window would be gone)."""
MAX_FUTURE_SECONDS = 300
"""Clock skew tolerated for events stamped ahead of the server."""
MAX_VALUE_CENTS = 10**8
"""The largest purchase value accepted (one million in major units): a cap on what one event
can add to an experiment's revenue."""
_EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_VISITOR = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FIELDS = {
    "id", "type", "experiment", "variant", "visitor", "at", "slot", "sku", "segment",
    "value_cents", "position",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExperimentEvent:
    """One exposure or conversion."""

    id: str
    """Unique per event (8-64 chars of A-Z a-z 0-9 _ -): the dedupe key."""
    type: EventType
    experiment: str
    variant: str
    visitor: str
    """Pseudonymous visitor id (the edge's ``se_vid`` cookie)."""
    at: float
    """Unix seconds when it happened."""
    slot: str | None = None
    sku: str | None = None
    segment: str | None = None
    value_cents: int | None = None
    """Purchase value in minor units (purchases only)."""

    @property
    def topic(self) -> str:
        return topics.EXPOSURES.name if self.type == "exposure" else topics.CONVERSIONS.name

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "id": self.id, "type": self.type, "experiment": self.experiment,
            "variant": self.variant, "visitor": self.visitor, "at": self.at,
        }  # fmt: skip
        for name in ("slot", "sku", "segment", "value_cents"):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return json.dumps(doc, separators=(",", ":")).encode()


def parse_event(raw: Any, now: float, where: str = "event") -> ExperimentEvent:
    """Validate one event object; EventRejected names the first bad field."""
    if not isinstance(raw, Mapping):
        raise EventRejected(where, "each event must be a JSON object")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise EventRejected(
            f"{where}.{unknown[0]}", f"unknown field; use some of {sorted(_FIELDS)}"
        )
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise EventRejected(f"{where}.type", f"use one of {', '.join(EVENT_TYPES)}")
    at = raw.get("at", now)
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise EventRejected(f"{where}.at", "unix seconds as a number")
    if not now - MAX_PAST_SECONDS <= at <= now + MAX_FUTURE_SECONDS:
        raise EventRejected(
            f"{where}.at", f"must be within the last {MAX_PAST_SECONDS // 86400} days"
        )
    value = raw.get("value_cents")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE_CENTS
    ):
        raise EventRejected(
            f"{where}.value_cents", f"an integer in 0..{MAX_VALUE_CENTS} (minor units)"
        )
    if value is not None and kind != "purchase":
        raise EventRejected(f"{where}.value_cents", "only purchases carry a value")
    return ExperimentEvent(
        id=_text(raw, "id", _EVENT_ID, where, "8-64 chars of A-Z a-z 0-9 _ -"),
        type=kind,
        experiment=_text(raw, "experiment", _ID, where, "an experiment key"),
        variant=_text(raw, "variant", _ID, where, "a variant id"),
        visitor=_text(raw, "visitor", _VISITOR, where, "1-64 chars of A-Z a-z 0-9 _ -"),
        at=float(at),
        slot=_optional(raw, "slot", _ID, where, "a slot id"),
        sku=_optional(raw, "sku", _SKU, where, "a SKU"),
        segment=_optional(raw, "segment", _ID, where, "a segment id"),
        value_cents=value,
    )


def _text(raw: Mapping[str, Any], name: str, rule: re.Pattern[str], where: str, what: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise EventRejected(f"{where}.{name}", f"required: {what}")
    return value


def _optional(
    raw: Mapping[str, Any], name: str, rule: re.Pattern[str], where: str, what: str
) -> str | None:
    return None if raw.get(name) is None else _text(raw, name, rule, where, what)


def decode_event(value: bytes | None) -> ExperimentEvent:
    """An event from a Kafka record value (validated like a collected one, with a wide
    time window so a replay of old records still decodes)."""
    if value is None:
        raise EventRejected("record", "empty value")
    try:
        doc = loads(value)
    except JsonRejected as exc:
        raise EventRejected("record", f"not JSON: {exc}") from exc
    at = doc.get("at") if isinstance(doc, dict) else None
    now = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else 0.0
    return parse_event(doc, now, "record")
