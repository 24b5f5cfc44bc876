"""A visitor's shopper profile and how clickstream events update it: pure, no I/O.

The profile is bounded and its update is a join: applying the same set of events in any order,
any number of times, gives the same profile (the consumer is at-least-once and a visitor's
events can arrive out of order across retries). Each part is built so:

- ``views``: the product views (id, time, category, price) within `HORIZON_SECONDS` of the
  newest event seen, at most `MAX_VIEWS` newest by (time, id): a set, so a duplicate is a no-op,
  and anything dropped on arrival would be dropped at the end too (the newest time only grows);
- ``cart``: per SKU the last add/remove by (time, id) wins; a purchase without a SKU empties the
  cart as of its time (``cleared``: the latest such purchase);
- ``sessions``: per session id its latest time, at most `MAX_SESSIONS` newest;
- ``first_seen`` / ``last_seen``: min / max of event times; ``campaign``: the first touch (the
  campaign of the earliest event, by (time, id), that carries one).

Features read off it at a time ``now`` (`features`): decayed category interest (half-life
`INTEREST_HALF_LIFE_SECONDS`), views per category within a window, the median viewed price
(price sensitivity: what the shopper looks at), cart value, visit count, days since first seen,
campaign.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import msgspec

from fragments.clickstream import ClickEvent

HORIZON_SECONDS = 30 * 24 * 3600
MAX_VIEWS = 200
MAX_SESSIONS = 200
INTEREST_HALF_LIFE_SECONDS = 3 * 24 * 3600
Stamp = tuple[float, str]


@dataclass(frozen=True, slots=True, order=True)
class View:
    at: float
    id: str
    category: str
    price_cents: int
    sku: str = ""
    session: str = ""


@dataclass(frozen=True, slots=True)
class CartLine:
    stamp: Stamp
    """(time, event id) of the last add or remove."""
    present: bool
    price_cents: int


@dataclass(frozen=True, slots=True)
class Profile:
    """One visitor's bounded profile (see the module docstring)."""

    visitor: str
    first_seen: float
    last_seen: float
    views: tuple[View, ...] = ()
    """Ordered by (time, id)."""
    cart: dict[str, CartLine] = field(default_factory=dict)
    cleared: Stamp | None = None
    sessions: dict[str, float] = field(default_factory=dict)
    campaign: tuple[float, str, str] | None = None
    """(time, event id, campaign) of the first touch."""

    def to_json(self) -> bytes:
        """The stored form: a JSON object with sorted keys (msgspec; the same document the
        standard library encoder wrote before, so either decodes the other's)."""
        doc = _ProfileDoc(
            campaign=self.campaign,
            cart={
                sku: (line.stamp[0], line.stamp[1], line.present, line.price_cents)
                for sku, line in self.cart.items()
            },
            cleared=self.cleared,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            sessions=self.sessions,
            views=[(v.at, v.id, v.category, v.price_cents, v.sku, v.session) for v in self.views],
            visitor=self.visitor,
        )
        return _ENCODER.encode(doc)

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        doc = _DECODER.decode(text)
        return cls(
            visitor=doc.visitor,
            first_seen=doc.first_seen,
            last_seen=doc.last_seen,
            views=tuple(View(*v) for v in doc.views),
            cart={
                sku: CartLine((a, i), present, price)
                for sku, (a, i, present, price) in doc.cart.items()
            },
            cleared=doc.cleared,
            sessions=doc.sessions,
            campaign=doc.campaign,
        )


class _ProfileDoc(msgspec.Struct):
    """`Profile.to_json`'s document (fields in sorted order; views and cart lines as arrays)."""

    campaign: tuple[float, str, str] | None
    cart: dict[str, tuple[float, str, bool, int]]
    cleared: tuple[float, str] | None
    first_seen: float
    last_seen: float
    sessions: dict[str, float]
    views: list[tuple[float, str, str, int, str, str]]
    visitor: str


_ENCODER = msgspec.json.Encoder(order="sorted")
_DECODER = msgspec.json.Decoder(_ProfileDoc)


def apply_events(profile: Profile | None, events: Iterable[ClickEvent]) -> Profile | None:
    """The profile after `events` (those without consent are ignored; None if nothing is left
    to profile): the same profile as `apply_event` one event at a time, built in one pass (the
    views are bounded once at the end: a view dropped on the way would be dropped at the end
    too, see the module docstring; the property tests check the two agree)."""
    consented = [event for event in events if event.consent]
    if not consented:
        return profile
    first = consented[0]
    p = profile or Profile(first.visitor, first.at, first.at)
    first_seen, last_seen = p.first_seen, p.last_seen
    views = list(p.views)
    cart, cleared, campaign = p.cart, p.cleared, p.campaign
    sessions = dict(p.sessions)
    for event in consented:
        at = event.at
        first_seen = min(first_seen, at)
        last_seen = max(last_seen, at)
        kind = event.type
        if kind == "view" and event.category is not None:
            views.append(
                View(at, event.id, event.category, event.price_cents or 0, event.sku or "",
                     event.session)
            )  # fmt: skip
        elif kind in ("add_to_cart", "remove_from_cart") and event.sku is not None:
            cart = _cart_write(cart, event)
        elif kind == "purchase":
            if event.sku is None:
                cleared = max(cleared, event.stamp) if cleared else event.stamp
            else:
                cart = _cart_write(cart, replace(event, type="remove_from_cart"))
        sessions[event.session] = max(sessions.get(event.session, at), at)
        if len(sessions) > MAX_SESSIONS:
            keep = sorted(sessions.items(), key=lambda kv: (kv[1], kv[0]))[-MAX_SESSIONS:]
            sessions = dict(keep)
        if event.campaign is not None:
            touch = (at, event.id, event.campaign)
            campaign = min(campaign, touch) if campaign else touch
    return Profile(
        visitor=p.visitor,
        first_seen=first_seen,
        last_seen=last_seen,
        views=_bounded_views(views, last_seen),
        cart=cart,
        cleared=cleared,
        sessions=sessions,
        campaign=campaign,
    )


def apply_event(profile: Profile | None, event: ClickEvent) -> Profile:
    """The profile after one consented event (commutative, idempotent: module docstring)."""
    p = profile or Profile(event.visitor, event.at, event.at)
    last_seen = max(p.last_seen, event.at)
    views = p.views
    if event.type == "view" and event.category is not None:
        view = View(
            event.at, event.id, event.category, event.price_cents or 0, event.sku or "",
            event.session,
        )  # fmt: skip
        views = (*views, view)
    views = _bounded_views(views, last_seen)
    cart = p.cart
    cleared = p.cleared
    if event.type in ("add_to_cart", "remove_from_cart") and event.sku is not None:
        cart = _cart_write(cart, event)
    elif event.type == "purchase":
        if event.sku is None:
            cleared = max(cleared, event.stamp) if cleared else event.stamp
        else:
            cart = _cart_write(cart, replace(event, type="remove_from_cart"))
    sessions = dict(p.sessions)
    sessions[event.session] = max(sessions.get(event.session, event.at), event.at)
    if len(sessions) > MAX_SESSIONS:
        keep = sorted(sessions.items(), key=lambda kv: (kv[1], kv[0]))[-MAX_SESSIONS:]
        sessions = dict(keep)
    campaign = p.campaign
    if event.campaign is not None:
        touch = (event.at, event.id, event.campaign)
        campaign = min(campaign, touch) if campaign else touch
    return Profile(
        visitor=p.visitor,
        first_seen=min(p.first_seen, event.at),
        last_seen=last_seen,
        views=views,
        cart=cart,
        cleared=cleared,
        sessions=sessions,
        campaign=campaign,
    )


def _bounded_views(views: Iterable[View], last_seen: float) -> tuple[View, ...]:
    kept = sorted({v for v in views if v.at > last_seen - HORIZON_SECONDS})
    return tuple(kept[-MAX_VIEWS:])


def _cart_write(cart: dict[str, CartLine], event: ClickEvent) -> dict[str, CartLine]:
    assert event.sku is not None
    line = cart.get(event.sku)
    if line is not None and line.stamp >= event.stamp:
        return cart
    out = dict(cart)
    # The line is the winning event alone (never mixed with what it replaced): order-free.
    out[event.sku] = CartLine(event.stamp, event.type == "add_to_cart", event.price_cents or 0)
    return out


@dataclass(frozen=True, slots=True)
class Features:
    """What segment rules read, at one time."""

    interest: dict[str, float]
    """Category -> decayed view count (a view now counts 1, one half-life ago 0.5)."""
    views_at: tuple[tuple[float, str], ...]
    """(time, category) of each view, for windowed counts."""
    median_viewed_price_cents: int | None
    cart_value_cents: int
    cart_skus: tuple[str, ...]
    visits: int
    days_since_first_seen: float
    campaign: str | None
    audiences: frozenset[str] = frozenset()
    """The CDP audiences the visitor is in (`origin.context.audiences`)."""

    def views_within(self, category: str, seconds: float, now: float) -> int:
        return sum(1 for at, c in self.views_at if c == category and now - at <= seconds)


def features(
    profile: Profile | None, now: float, audiences: frozenset[str] = frozenset()
) -> Features:
    """The profile's features at `now` (no profile: those of a visitor never seen), with the
    visitor's CDP `audiences`."""
    if profile is None:
        return Features({}, (), None, 0, (), 0, 0.0, None, audiences)
    interest: dict[str, float] = {}
    for v in profile.views:
        age = max(0.0, now - v.at)
        weight = 0.5 ** (age / INTEREST_HALF_LIFE_SECONDS)
        interest[v.category] = interest.get(v.category, 0.0) + weight
    prices = sorted(v.price_cents for v in profile.views if v.price_cents > 0)
    in_cart = sorted(
        (sku, line)
        for sku, line in profile.cart.items()
        if line.present and (profile.cleared is None or line.stamp > profile.cleared)
    )
    return Features(
        interest={k: round(w, 9) for k, w in sorted(interest.items())},
        views_at=tuple((v.at, v.category) for v in profile.views),
        median_viewed_price_cents=prices[len(prices) // 2] if prices else None,
        cart_value_cents=sum(line.price_cents for _, line in in_cart),
        cart_skus=tuple(sku for sku, _ in in_cart),
        visits=len(profile.sessions),
        days_since_first_seen=max(0.0, now - profile.first_seen) / 86400,
        campaign=profile.campaign[2] if profile.campaign else None,
        audiences=audiences,
    )
