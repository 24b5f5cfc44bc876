"""The clickstream event (topic ``clickstream.v1``): what a shopper's browser reports about
their visit, for the context processor (`origin.context`). The one definition of the event.

Types: ``view`` (a product page: sku, category, price), ``add_to_cart`` / ``remove_from_cart``
(sku, price), ``purchase`` (a sku, or none: the whole cart), ``search`` (its category). Every
event names its visitor (the ``se_vid`` cookie), its session, when it happened, whether the
shopper consented to personalization, and optionally the campaign it came from. The browser
sends them through the edge's ``/se/events`` to the origin's ``POST /v1/clickstream``.

`validate_click` checks a parsed JSON object and raises `ClickInvalid` naming the field;
`clickstream_schema` is the published JSON Schema. Standard library only (runs under Pyodide).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from fragments import topics
from fragments.errors import FieldInvalid
from fragments.ids import ID_PATTERN, SKU_PATTERN, VISITOR_PATTERN, anchored

ClickType = Literal["view", "add_to_cart", "remove_from_cart", "purchase", "search"]
CLICK_TYPES: tuple[ClickType, ...] = (
    "view", "add_to_cart", "remove_from_cart", "purchase", "search",
)  # fmt: skip
EVENT_ID_PATTERN = r"[A-Za-z0-9_-]{8,64}"
MAX_PAST_SECONDS = 7 * 24 * 3600
MAX_FUTURE_SECONDS = 300
MAX_PRICE_CENTS = 10**9
_EVENT_ID = re.compile(EVENT_ID_PATTERN)
_VISITOR = re.compile(VISITOR_PATTERN)
_ID = re.compile(ID_PATTERN)
_SKU = re.compile(SKU_PATTERN)
FIELDS = (
    "id", "type", "visitor", "session", "at", "consent", "sku", "category", "price_cents",
    "campaign",
)  # fmt: skip
_NEEDS: dict[str, tuple[str, ...]] = {
    "view": ("sku", "category", "price_cents"),
    "add_to_cart": ("sku", "price_cents"),
    "remove_from_cart": ("sku",),
    "purchase": (),
    "search": ("category",),
}
REQUIRED_BY_TYPE: Mapping[str, tuple[str, ...]] = _NEEDS
"""The optional fields each event type requires (`validate_click` checks them)."""


class ClickInvalid(FieldInvalid):
    """A clickstream event is invalid; `field` names the offending field."""


@dataclass(frozen=True, slots=True)
class ClickEvent:
    """One clickstream event (see the module docstring)."""

    id: str
    """Unique per event: the dedupe key."""
    type: ClickType
    visitor: str
    session: str
    at: float
    consent: bool
    """Whether the shopper consented to personalization: without it no profile is kept."""
    sku: str | None = None
    category: str | None = None
    price_cents: int | None = None
    campaign: str | None = None
    """The campaign the visit came from (e.g. ``utm_campaign``), as an id."""

    @property
    def topic(self) -> str:
        return topics.CLICKSTREAM.name

    @property
    def stamp(self) -> tuple[float, str]:
        """Total order of events: time, then id (ties are broken the same everywhere)."""
        return (self.at, self.id)

    def to_wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc

    def to_json(self) -> bytes:
        """The wire JSON, compact (a Kafka record value; the key is the visitor id)."""
        return json.dumps(self.to_wire(), separators=(",", ":")).encode()


def _text(raw: Mapping[str, Any], name: str, rule: re.Pattern[str], what: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise ClickInvalid(name, f"expected {what}")
    return value


def validate_click(raw: Any, now: float) -> ClickEvent:
    """One event from its parsed JSON object; ClickInvalid names the first bad field."""
    if not isinstance(raw, Mapping):
        raise ClickInvalid("event", "must be a JSON object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ClickInvalid(unknown[0], f"unknown field; use some of {list(FIELDS)}")
    kind = raw.get("type")
    if kind not in CLICK_TYPES:
        raise ClickInvalid("type", f"use one of {', '.join(CLICK_TYPES)}")
    at = raw.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ClickInvalid("at", "unix seconds as a number")
    if not now - MAX_PAST_SECONDS <= at <= now + MAX_FUTURE_SECONDS:
        raise ClickInvalid("at", f"must be within the last {MAX_PAST_SECONDS // 86400} days")
    consent = raw.get("consent")
    if not isinstance(consent, bool):
        raise ClickInvalid("consent", "true or false")
    for name in _NEEDS[kind]:
        if raw.get(name) is None:
            raise ClickInvalid(name, f"required for {kind} events")
    price = raw.get("price_cents")
    if price is not None and (
        isinstance(price, bool) or not isinstance(price, int) or not 0 <= price <= MAX_PRICE_CENTS
    ):
        raise ClickInvalid("price_cents", "a non-negative integer (minor units)")
    optional = {
        "sku": (_SKU, "a SKU"),
        "category": (_ID, "a category id (a-z, 0-9, -, _)"),
        "campaign": (_ID, "a campaign id (a-z, 0-9, -, _)"),
    }
    values = {
        name: _text(raw, name, rule, what) if raw.get(name) is not None else None
        for name, (rule, what) in optional.items()
    }
    return ClickEvent(
        id=_text(raw, "id", _EVENT_ID, "8-64 chars of A-Z a-z 0-9 _ -"),
        type=kind,
        visitor=_text(raw, "visitor", _VISITOR, "1-64 chars of A-Z a-z 0-9 _ -"),
        session=_text(raw, "session", _VISITOR, "1-64 chars of A-Z a-z 0-9 _ -"),
        at=float(at),
        consent=consent,
        sku=values["sku"],
        category=values["category"],
        price_cents=price,
        campaign=values["campaign"],
    )


def decode_click(value: bytes, now: float) -> ClickEvent:
    """A Kafka record value back into an event (ClickInvalid when it is not one)."""
    try:
        raw = json.loads(value)
    except ValueError as exc:
        raise ClickInvalid("event", f"not JSON: {exc}") from exc
    return validate_click(raw, now)


def clickstream_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of ``clickstream.v1``."""
    text = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://shelfedge.dev/schemas/clickstream.v1.json",
        "title": "clickstream.v1",
        "description": (
            "A shopper's product view, cart change, purchase or search (fragments.clickstream). "
            "Evolution: new optional fields may be added; anything else is clickstream.v2."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "type", "visitor", "session", "at", "consent"],
        "properties": {
            "id": {**text, "pattern": anchored(EVENT_ID_PATTERN)},
            "type": {"enum": list(CLICK_TYPES)},
            "visitor": {**text, "pattern": anchored(VISITOR_PATTERN)},
            "session": {**text, "pattern": anchored(VISITOR_PATTERN)},
            "at": {"type": "number", "description": "unix seconds"},
            "consent": {"type": "boolean"},
            "sku": {**text, "pattern": anchored(SKU_PATTERN)},
            "category": {**text, "pattern": anchored(ID_PATTERN)},
            "price_cents": {"type": "integer", "minimum": 0, "maximum": MAX_PRICE_CENTS},
            "campaign": {**text, "pattern": anchored(ID_PATTERN)},
        },
        "allOf": [
            {
                "if": {"properties": {"type": {"const": kind}}},
                "then": {"required": list(needs)},
            }
            for kind, needs in _NEEDS.items()
            if needs
        ],
    }
