"""Turn the storefront's behaviour beacons into clickstream events for the origin.

The browser reports what the shopper did (``{"events": [{"type": "view", "sku", "category",
"price_cents"}, ...]}`` to ``/se/events``, alongside the experiment beacons of
`edge.browser_events`); the edge adds what the browser may not set: the visitor id from its
HttpOnly ``se_vid`` cookie, the time, a fresh event id and the consent flag. Types are
`fragments.clickstream.CLICK_TYPES` (``view``, ``add_to_cart``, ``remove_from_cart``,
``purchase``, ``search``); other types (``click``) are not behaviour and are left to the
experiment beacons, uncounted here. From an item only ``sku``, ``category``, ``price_cents``,
``campaign`` and ``session`` are read; any ``visitor``, ``id``, ``at`` or ``consent`` the
browser sends is ignored. Each event is checked by the one definition of the wire event
(`fragments.clickstream.validate_click`): an item it refuses is skipped and counted under
``invalid_<field>``.

Nothing is reported without consent (``se_consent=1``) or without a well-formed visitor id.
A missing or malformed ``session`` (the page's per-tab id) becomes one derived from the visitor
and the current `SESSION_FALLBACK_S` window. Pure: the adapter supplies cookies, time and event
ids; the body's size limit and parsing are `edge.surface`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.browser_events import MAX_BROWSER_EVENTS
from edge.context import CONSENT_COOKIE, VISITOR_ID
from fragments.clickstream import CLICK_TYPES, ClickEvent, ClickInvalid, validate_click
from fragments.ids import VISITOR_PATTERN
from fragments.segment_cookie import VISITOR_COOKIE

SESSION_FALLBACK_S = 1800
"""Beacons without a session id of their own share one per visitor per half hour."""
BROWSER_FIELDS = ("sku", "category", "price_cents", "campaign")
_SESSION = re.compile(VISITOR_PATTERN)


@dataclass(slots=True)
class Tracking:
    """Clickstream events to forward to the origin, and why the others were not."""

    events: list[ClickEvent] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def behaviour_items(body: Any) -> list[Mapping[str, Any]]:
    """The beacon's behaviour items (at most `MAX_BROWSER_EVENTS` items looked at)."""
    raw = body.get("events") if isinstance(body, Mapping) else None
    if not isinstance(raw, list):
        return []
    return [
        item
        for item in raw[:MAX_BROWSER_EVENTS]
        if isinstance(item, Mapping) and item.get("type") in CLICK_TYPES
    ]


def track(body: Any, cookies: Mapping[str, str], now: float, new_id: Callable[[], str]) -> Tracking:
    """The clickstream events of a beacon body for the visitor of `cookies`."""
    out = Tracking()
    items = behaviour_items(body)
    if not items:
        return out
    if cookies.get(CONSENT_COOKIE) != "1":
        out.skip("no_consent", len(items))
        return out
    visitor = cookies.get(VISITOR_COOKIE, "")
    if not VISITOR_ID.fullmatch(visitor):
        out.skip("no_visitor", len(items))
        return out
    for item in items:
        doc: dict[str, Any] = {n: item[n] for n in BROWSER_FIELDS if item.get(n) is not None}
        doc.update(
            id=new_id(),
            type=item["type"],
            visitor=visitor,
            session=_session(item.get("session"), visitor, now),
            at=now,
            consent=True,
        )
        try:
            out.events.append(validate_click(doc, now))
        except ClickInvalid as exc:
            out.skip(f"invalid_{exc.field}")
    return out


def _session(raw: object, visitor: str, now: float) -> str:
    if isinstance(raw, str) and _SESSION.fullmatch(raw):
        return raw
    return f"{visitor[:16]}-{int(now // SESSION_FALLBACK_S)}"
