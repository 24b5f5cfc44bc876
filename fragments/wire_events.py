"""The experiment events on the wire: one definition for the edge that builds them and the origin
that validates and publishes them.

Types: ``exposure`` (a shopper saw a variant) goes to `fragments.topics.EXPOSURES`; ``click``,
``add_to_cart`` and ``purchase`` (conversions) go to `fragments.topics.CONVERSIONS`. Both are
keyed by visitor so one visitor's events stay ordered. Every event has an id (the aggregator
deduplicates by it), an experiment and variant, a pseudonymous visitor id and a time; slot,
SKU, segment, a purchase value and, on exposures, the visitor's pre-exposure activity (the CUPED
covariate, ``pre_activity``, 0-1000) are optional. What was shown, when (temporal alignment):
an exposure may carry the shown bundle's ``bundle_version`` and ``content_hash``; a conversion
the ``price_cents`` the shopper saw for the item.

Wire format (JSON, one event per Kafka record; a list under ``"events"`` in ``POST /v1/events``),
members in this order, optional ones only when set::

    {"id": "...", "type": "purchase", "experiment": "hero-layout", "variant": "b",
     "visitor": "3f2a...", "at": 1763856000.5, "slot": "home-hero", "sku": "SKU-1",
     "segment": "everyone", "value_cents": 2599}

`ExperimentEvent` is the typed value (the edge builds it, `to_wire`/`to_json` encode it);
`validate_event` checks a parsed JSON object strictly and names the first bad field;
`decode_event` reads a Kafka record value. The field names, limits and patterns below are the
only ones: `origin.events.schema` and the edge use them, never copies.

It must stay standard library only (it is imported under Pyodide and in the WASI build).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fragments import topics
from fragments.errors import FieldInvalid, JsonRejected
from fragments.ids import ID_PATTERN, SKU_PATTERN, VISITOR_PATTERN
from fragments.strict_json import loads

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
MAX_PRE_ACTIVITY = 1000
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
VISITOR = re.compile(VISITOR_PATTERN)
ID = re.compile(ID_PATTERN)
"""Experiment keys, variant ids, slot ids and segment ids (`fragments.ids`)."""
SKU = re.compile(SKU_PATTERN)
REQUIRED_FIELDS = ("id", "type", "experiment", "variant", "visitor", "at")
OPTIONAL_FIELDS = (
    "slot", "sku", "segment", "value_cents", "pre_activity", "bundle_version", "content_hash",
    "price_cents",
)  # fmt: skip
CONTENT_HASH = re.compile(r"[0-9a-f]{16,64}")
ACCEPTED_FIELDS = frozenset({*REQUIRED_FIELDS, *OPTIONAL_FIELDS, "position"})
"""Members an event may carry (``position`` is accepted from older storefronts and ignored)."""


class WireEventInvalid(FieldInvalid):
    """An event is malformed; `field` names where (e.g. ``events[3].type``)."""


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
    pre_activity: int | None = None
    """The visitor's activity before the exposure (exposures only): the CUPED covariate."""
    bundle_version: int | None = None
    """The version of the bundle the exposure showed (exposures only)."""
    content_hash: str | None = None
    """The content hash of the bundle the exposure showed (exposures only)."""
    price_cents: int | None = None
    """The price the shopper saw for the item (conversions only), minor units."""

    @property
    def topic(self) -> str:
        return topics.EXPOSURES.name if self.type == "exposure" else topics.CONVERSIONS.name

    def to_wire(self) -> dict[str, Any]:
        """The wire JSON object (members in wire order, optional ones only when set)."""
        doc: dict[str, Any] = {
            "id": self.id, "type": self.type, "experiment": self.experiment,
            "variant": self.variant, "visitor": self.visitor, "at": self.at,
        }  # fmt: skip
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc

    def to_json(self) -> bytes:
        """The wire JSON, compact (a Kafka record value)."""
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()


def validate_event(raw: Any, now: float, where: str = "event") -> ExperimentEvent:
    """Validate one parsed event object; WireEventInvalid names the first bad field."""
    if not isinstance(raw, Mapping):
        raise WireEventInvalid(where, "each event must be a JSON object")
    unknown = sorted(set(raw) - ACCEPTED_FIELDS)
    if unknown:
        raise WireEventInvalid(
            f"{where}.{unknown[0]}", f"unknown field; use some of {sorted(ACCEPTED_FIELDS)}"
        )
    kind = raw.get("type")
    if kind not in EVENT_TYPES:
        raise WireEventInvalid(f"{where}.type", f"use one of {', '.join(EVENT_TYPES)}")
    at = raw.get("at", now)
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise WireEventInvalid(f"{where}.at", "unix seconds as a number")
    if not now - MAX_PAST_SECONDS <= at <= now + MAX_FUTURE_SECONDS:
        raise WireEventInvalid(
            f"{where}.at", f"must be within the last {MAX_PAST_SECONDS // 86400} days"
        )
    value = raw.get("value_cents")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE_CENTS
    ):
        raise WireEventInvalid(
            f"{where}.value_cents", f"an integer in 0..{MAX_VALUE_CENTS} (minor units)"
        )
    if value is not None and kind != "purchase":
        raise WireEventInvalid(f"{where}.value_cents", "only purchases carry a value")
    activity = raw.get("pre_activity")
    if activity is not None and (
        isinstance(activity, bool)
        or not isinstance(activity, int)
        or not 0 <= activity <= MAX_PRE_ACTIVITY
    ):
        raise WireEventInvalid(f"{where}.pre_activity", f"an integer from 0 to {MAX_PRE_ACTIVITY}")
    if activity is not None and kind != "exposure":
        raise WireEventInvalid(
            f"{where}.pre_activity", "only exposures carry pre-exposure activity"
        )
    version = raw.get("bundle_version")
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**53
    ):
        raise WireEventInvalid(f"{where}.bundle_version", "a positive integer")
    shown_price = raw.get("price_cents")
    if shown_price is not None and (
        isinstance(shown_price, bool)
        or not isinstance(shown_price, int)
        or not 0 <= shown_price <= MAX_VALUE_CENTS
    ):
        raise WireEventInvalid(f"{where}.price_cents", "a non-negative integer (minor units)")
    if kind == "exposure" and shown_price is not None:
        raise WireEventInvalid(f"{where}.price_cents", "only conversions carry a shown price")
    if kind != "exposure" and (version is not None or raw.get("content_hash") is not None):
        raise WireEventInvalid(f"{where}.bundle_version", "only exposures name the bundle shown")
    return ExperimentEvent(
        id=_text(raw, "id", EVENT_ID, where, "8-64 chars of A-Z a-z 0-9 _ -"),
        type=kind,
        experiment=_text(raw, "experiment", ID, where, "an experiment key"),
        variant=_text(raw, "variant", ID, where, "a variant id"),
        visitor=_text(raw, "visitor", VISITOR, where, "1-64 chars of A-Z a-z 0-9 _ -"),
        at=float(at),
        slot=_optional(raw, "slot", ID, where, "a slot id"),
        sku=_optional(raw, "sku", SKU, where, "a SKU"),
        segment=_optional(raw, "segment", ID, where, "a segment id"),
        value_cents=value,
        pre_activity=activity,
        bundle_version=version,
        content_hash=_optional(raw, "content_hash", CONTENT_HASH, where, "a hex content hash"),
        price_cents=shown_price,
    )


def _text(raw: Mapping[str, Any], name: str, rule: re.Pattern[str], where: str, what: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise WireEventInvalid(f"{where}.{name}", f"required: {what}")
    return value


def _optional(
    raw: Mapping[str, Any], name: str, rule: re.Pattern[str], where: str, what: str
) -> str | None:
    return None if raw.get(name) is None else _text(raw, name, rule, where, what)


def decode_event(value: bytes | None) -> ExperimentEvent:
    """An event from a Kafka record value (validated like a collected one, with a wide
    time window so a replay of old records still decodes)."""
    if value is None:
        raise WireEventInvalid("record", "empty value")
    try:
        doc = loads(value)
    except JsonRejected as exc:
        raise WireEventInvalid("record", f"not JSON: {exc}") from exc
    at = doc.get("at") if isinstance(doc, dict) else None
    now = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else 0.0
    return validate_event(doc, now, "record")
