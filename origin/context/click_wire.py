"""Fast decoding of ``clickstream.v1`` record values for the context processor (msgspec).

`fragments.clickstream` is the one definition of the event (standard library only, it also runs
at the edge). This module derives a msgspec Struct from it (the field names, the id / SKU /
category patterns, the price bound) and decodes straight from bytes; the checks a Struct cannot
express (the time window, the fields each type needs) follow in Python. Anything the fast path
refuses goes through `fragments.clickstream.decode_click`, so an invalid record is rejected with
the definition's own message and field, and the definition wins over any disagreement. The tests
check that both decoders agree on valid and invalid records alike.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from fragments.clickstream import (
    EVENT_ID_PATTERN,
    MAX_FUTURE_SECONDS,
    MAX_PAST_SECONDS,
    MAX_PRICE_CENTS,
    REQUIRED_BY_TYPE,
    ClickEvent,
    ClickType,
    decode_click,
)
from fragments.ids import ID_PATTERN, SKU_PATTERN, VISITOR_PATTERN, anchored

_EventId = Annotated[str, msgspec.Meta(pattern=anchored(EVENT_ID_PATTERN))]
_Visitor = Annotated[str, msgspec.Meta(pattern=anchored(VISITOR_PATTERN))]
_Sku = Annotated[str, msgspec.Meta(pattern=anchored(SKU_PATTERN))]
_Id = Annotated[str, msgspec.Meta(pattern=anchored(ID_PATTERN))]
_Price = Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE_CENTS)]


class ClickWire(msgspec.Struct, forbid_unknown_fields=True):
    """The wire shape of `fragments.clickstream.ClickEvent` (its ``FIELDS``, in order: a test
    checks it)."""

    id: _EventId
    type: ClickType
    visitor: _Visitor
    session: _Visitor
    at: float
    consent: bool
    sku: _Sku | None = None
    category: _Id | None = None
    price_cents: _Price | None = None
    campaign: _Id | None = None


_DECODER = msgspec.json.Decoder(ClickWire)
_NEEDED = dict(REQUIRED_BY_TYPE)


def decode_click_fast(value: bytes, now: float) -> ClickEvent:
    """`fragments.clickstream.decode_click`, faster on valid records (same result, same errors)."""
    try:
        wire = _DECODER.decode(value)
    except msgspec.DecodeError:
        return decode_click(value, now)
    at = wire.at
    if not now - MAX_PAST_SECONDS <= at <= now + MAX_FUTURE_SECONDS:
        return decode_click(value, now)
    for name in _NEEDED[wire.type]:
        if getattr(wire, name) is None:
            return decode_click(value, now)
    return ClickEvent(
        wire.id, wire.type, wire.visitor, wire.session, float(at), wire.consent, wire.sku,
        wire.category, wire.price_cents, wire.campaign,
    )  # fmt: skip
