"""Behaviour beacons become clickstream events: the edge supplies the visitor, time, id and
consent; the browser cannot; nothing without consent or a visitor id; every event passes the
one definition of the wire event."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from edge.browser_events import attribute
from edge.clickstream_beacons import SESSION_FALLBACK_S, track
from fragments.clickstream import validate_click
from fragments.experiment_codec import config_from_json
from fragments.experiments import EMPTY_CONFIG
from fragments.sticky_cookie import sign_sticky
from fragments.wire_events import validate_event

VISITOR = "d" * 32
NOW = 1_800_000_000.0
COOKIES = {"se_vid": VISITOR, "se_consent": "1"}


def ids() -> Any:
    counter = itertools.count()
    return lambda: f"event-{next(counter):04d}"


def test_each_behaviour_type_becomes_a_wire_event_with_the_edges_visitor() -> None:
    body = {
        "events": [
            {"type": "view", "sku": "SKU-1", "category": "outdoor", "price_cents": 4200,
             "session": "tab-1", "campaign": "spring"},
            {"type": "add_to_cart", "sku": "SKU-1", "price_cents": 4200, "slot": "x",
             "position": 1},
            {"type": "remove_from_cart", "sku": "SKU-1"},
            {"type": "purchase"},
            {"type": "search", "category": "tents"},
            {"type": "click", "sku": "SKU-2"},  # an experiment beacon, not behaviour
        ]
    }  # fmt: skip
    out = track(body, COOKIES, NOW, ids())
    assert [e.type for e in out.events] == [
        "view", "add_to_cart", "remove_from_cart", "purchase", "search",
    ]  # fmt: skip
    assert out.skipped == {}
    for event in out.events:
        assert (event.visitor, event.at, event.consent) == (VISITOR, NOW, True)
        assert validate_click(event.to_wire(), NOW) == event  # the one definition agrees
    view = out.events[0]
    assert (view.session, view.campaign, view.category, view.price_cents) == (
        "tab-1", "spring", "outdoor", 4200,
    )  # fmt: skip
    assert out.events[1].session == f"{VISITOR[:16]}-{int(NOW // SESSION_FALLBACK_S)}"


def test_the_browser_cannot_set_the_visitor_time_id_or_consent() -> None:
    forged = {"type": "search", "category": "tents", "visitor": "e" * 32, "id": "forged-id-1",
              "at": NOW - 3600, "consent": False}  # fmt: skip
    (event,) = track({"events": [forged]}, COOKIES, NOW, ids()).events
    assert (event.visitor, event.id, event.at, event.consent) == (VISITOR, "event-0000", NOW, True)


@pytest.mark.parametrize(
    ("cookies", "reason"),
    [
        ({"se_vid": VISITOR}, "no_consent"),
        ({"se_vid": VISITOR, "se_consent": "0"}, "no_consent"),
        ({"se_consent": "1"}, "no_visitor"),
        ({"se_consent": "1", "se_vid": "not-a-visitor"}, "no_visitor"),
    ],
)
def test_nothing_without_consent_or_visitor(cookies: dict[str, str], reason: str) -> None:
    body = {"events": [{"type": "search", "category": "tents"}, {"type": "purchase"}]}
    out = track(body, cookies, NOW, ids())
    assert out.events == []
    assert out.skipped == {reason: 2}


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"type": "view", "sku": "SKU-1", "price_cents": 10}, "invalid_category"),
        (
            {"type": "view", "sku": "SKU-1", "category": "Bad Cat!", "price_cents": 10},
            "invalid_category",
        ),
        ({"type": "add_to_cart", "sku": "SKU-1"}, "invalid_price_cents"),
        ({"type": "add_to_cart", "sku": "SKU-1", "price_cents": -1}, "invalid_price_cents"),
        ({"type": "add_to_cart", "sku": "SKU-1", "price_cents": True}, "invalid_price_cents"),
        ({"type": "remove_from_cart", "sku": "no spaces"}, "invalid_sku"),
        ({"type": "search", "category": "tents", "campaign": "Spring!"}, "invalid_campaign"),
    ],
)
def test_invalid_items_are_skipped_naming_the_field(item: dict[str, Any], reason: str) -> None:
    out = track({"events": [item, {"type": "purchase"}]}, COOKIES, NOW, ids())
    assert [e.type for e in out.events] == ["purchase"]
    assert out.skipped == {reason: 1}


@pytest.mark.parametrize("body", [None, [], {"events": "x"}, {"events": [1, "x", None]}, {}])
def test_malformed_bodies_track_nothing(body: Any) -> None:
    out = track(body, COOKIES, NOW, ids())
    assert out.events == []
    assert out.skipped == {}


def test_behaviour_only_items_are_not_experiment_beacons() -> None:
    body = {"events": [{"type": "view", "sku": "S1", "category": "c", "price_cents": 1}]}
    result = attribute(body, EMPTY_CONFIG, COOKIES, NOW, ids(), "s" * 32)
    assert result.events == []
    assert result.skipped == {}


HERO_CONFIG = config_from_json(
    json.dumps(
        {
            "version": 3,
            "experiments": [
                {
                    "key": "hero",
                    "name": "Hero",
                    "status": "running",
                    "slots": ["home-hero"],
                    "variants": [
                        {"id": "control", "weight": 0.5},
                        {"id": "compact", "weight": 0.5},
                    ],
                }
            ],
        }
    )
)


@pytest.mark.parametrize(
    ("price", "expected"), [(1999, 1999), (-1, None), ("12", None), (None, None)]
)
def test_experiment_conversions_carry_the_price_the_shopper_saw(
    price: object, expected: int | None
) -> None:
    secret = "s" * 32
    cookies = {**COOKIES, "se_exp": sign_sticky("hero.1.0", VISITOR, secret)}
    item = {"type": "add_to_cart", "slot": "home-hero", "sku": "SKU-1", "price_cents": price}
    (event,) = attribute({"events": [item]}, HERO_CONFIG, cookies, NOW, ids(), secret).events
    assert (event.experiment, event.variant, event.price_cents) == ("hero", "compact", expected)
    assert validate_event(event.to_wire(), NOW) == event  # the wire definition agrees
