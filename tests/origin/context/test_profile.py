"""Profile updates from event sequences (table-driven): features, and that order and duplicates
change nothing."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass

import pytest

from fragments.clickstream import (
    CLICK_TYPES,
    ClickEvent,
    ClickInvalid,
    clickstream_schema,
    validate_click,
)
from origin.context.profile import (
    HORIZON_SECONDS,
    INTEREST_HALF_LIFE_SECONDS,
    MAX_VIEWS,
    Profile,
    apply_events,
    features,
)

T0 = 1_700_000_000.0
VISITOR = "v1"


def ev(
    n: int,
    kind: str,
    at: float,
    *,
    sku: str | None = None,
    category: str | None = None,
    price: int | None = None,
    session: str = "s1",
    campaign: str | None = None,
    consent: bool = True,
) -> ClickEvent:
    assert kind in CLICK_TYPES
    return ClickEvent(
        f"event-{n:04d}",
        kind,
        VISITOR, session, T0 + at, consent, sku, category, price, campaign,
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    name: str
    events: tuple[ClickEvent, ...]
    cart_value: int
    cart: tuple[str, ...]
    visits: int
    campaign: str | None
    median_price: int | None
    outdoor_views_30m: int


CASES = [
    Case("nothing consented", (ev(1, "view", 0, sku="A", category="outdoor", price=100,
         consent=False),), 0, (), 0, None, None, 0),
    Case("three outdoor views", tuple(ev(i, "view", i * 60, sku=f"A{i}", category="outdoor",
         price=1000 * i) for i in range(1, 4)), 0, (), 1, None, 2000, 3),
    Case("old views fall out of the window", (
        ev(1, "view", 0, sku="A", category="outdoor", price=500),
        ev(2, "view", 3600, sku="B", category="outdoor", price=700),
    ), 0, (), 1, None, 700, 1),
    Case("add, add, remove", (
        ev(1, "add_to_cart", 0, sku="A", price=5000),
        ev(2, "add_to_cart", 10, sku="B", price=12000),
        ev(3, "remove_from_cart", 20, sku="A"),
    ), 12000, ("B",), 1, None, None, 0),
    Case("remove before add by time: the later add wins", (
        ev(2, "add_to_cart", 20, sku="A", price=5000),
        ev(1, "remove_from_cart", 10, sku="A"),
    ), 5000, ("A",), 1, None, None, 0),
    Case("purchase without sku empties the cart as of its time", (
        ev(1, "add_to_cart", 0, sku="A", price=5000),
        ev(2, "purchase", 10),
        ev(3, "add_to_cart", 20, sku="B", price=300),
    ), 300, ("B",), 1, None, None, 0),
    Case("purchase of one sku", (
        ev(1, "add_to_cart", 0, sku="A", price=5000),
        ev(2, "add_to_cart", 1, sku="B", price=300),
        ev(3, "purchase", 10, sku="A"),
    ), 300, ("B",), 1, None, None, 0),
    Case("first-touch campaign and visits", (
        ev(1, "search", 100, category="books", campaign="autumn", session="s2"),
        ev(2, "search", 50, category="books", campaign="spring-sale", session="s1"),
        ev(3, "search", 200, category="books", session="s3"),
    ), 0, (), 3, "spring-sale", None, 0),
]  # fmt: skip


def run(events: tuple[ClickEvent, ...] | list[ClickEvent]) -> Profile | None:
    return apply_events(None, events)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_profile_features(case: Case) -> None:
    profile = run(case.events)
    if case.visits == 0:
        assert profile is None
        return
    assert profile is not None
    now = max(e.at for e in case.events)
    f = features(profile, now)
    assert f.cart_value_cents == case.cart_value
    assert f.cart_skus == case.cart
    assert f.visits == case.visits
    assert f.campaign == case.campaign
    assert f.median_viewed_price_cents == case.median_price
    assert f.views_within("outdoor", 30 * 60, now) == case.outdoor_views_30m


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_order_and_duplicates_change_nothing(case: Case) -> None:
    reference = run(case.events)
    for order in itertools.permutations(case.events):
        assert run(order) == reference
    doubled = list(case.events) + list(reversed(case.events))
    assert run(doubled) == reference
    if reference is not None:
        assert apply_events(reference, case.events) == reference
        assert Profile.from_json(reference.to_json()) == reference


def test_bounded_views_are_order_free_on_a_long_shuffled_log() -> None:
    log = [
        ev(i, "view", i * 7.0, sku=f"S{i}", category=("outdoor", "books")[i % 2], price=i)
        for i in range(MAX_VIEWS * 2)
    ] + [ev(9000, "view", -HORIZON_SECONDS, sku="OLD", category="toys", price=1)]
    reference = run(log)
    assert reference is not None
    assert len(reference.views) == MAX_VIEWS
    rng = random.Random(7)
    for _ in range(5):
        shuffled = log + rng.sample(log, 50)
        rng.shuffle(shuffled)
        assert run(shuffled) == reference


def test_interest_decays_with_a_half_life() -> None:
    profile = run([ev(1, "view", 0, sku="A", category="outdoor", price=1)])
    assert profile is not None
    assert features(profile, T0).interest["outdoor"] == 1.0
    later = features(profile, T0 + INTEREST_HALF_LIFE_SECONDS)
    assert later.interest["outdoor"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "click"}, "type"),
        ({"visitor": ""}, "visitor"),
        ({"at": "now"}, "at"),
        ({"at": T0 - 30 * 86400}, "at"),
        ({"consent": "yes"}, "consent"),
        ({"category": None}, "category"),
        ({"price_cents": -1}, "price_cents"),
        ({"sku": "bad sku"}, "sku"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_clicks_name_the_field(change: dict[str, object], field: str) -> None:
    good = ev(1, "view", 0, sku="A", category="outdoor", price=1).to_wire()
    assert validate_click(good, T0) == ev(1, "view", 0, sku="A", category="outdoor", price=1)
    with pytest.raises(ClickInvalid) as caught:
        validate_click({**good, **change}, T0)
    assert caught.value.field == field


def test_schema_names_every_field() -> None:
    schema = clickstream_schema()
    assert set(schema["properties"]) == set(ev(1, "search", 0, category="x").to_wire()) | {
        "sku", "price_cents", "campaign",
    }  # fmt: skip


def stdlib_document(profile: Profile) -> str:
    """What `Profile.to_json` wrote before it used msgspec (json.dumps, sorted keys)."""
    return json.dumps(
        {
            "visitor": profile.visitor,
            "first_seen": profile.first_seen,
            "last_seen": profile.last_seen,
            "views": [
                [v.at, v.id, v.category, v.price_cents, v.sku, v.session] for v in profile.views
            ],
            "cart": {
                sku: [line.stamp[0], line.stamp[1], line.present, line.price_cents]
                for sku, line in sorted(profile.cart.items())
            },
            "cleared": list(profile.cleared) if profile.cleared else None,
            "sessions": dict(sorted(profile.sessions.items())),
            "campaign": list(profile.campaign) if profile.campaign else None,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


@pytest.mark.parametrize(
    "case", [c for c in CASES if run(c.events) is not None], ids=lambda c: c.name
)
def test_profiles_stored_by_the_stdlib_encoder_still_decode(case: Case) -> None:
    profile = run(case.events)
    assert profile is not None
    old = stdlib_document(profile)
    assert Profile.from_json(old) == profile
    assert Profile.from_json(old.encode()) == profile
    assert json.loads(profile.to_json()) == json.loads(old)  # the same document
    assert Profile.from_json(profile.to_json()) == profile
