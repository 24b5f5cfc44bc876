"""CDP audiences: the message shapes CDPs emit (errors name the field or line), last-writer-wins
folding (order and duplicates change nothing), and their place among the segment rules."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from origin.context.audiences import (
    Membership,
    fold,
    members,
    parse_body,
    parse_message,
    parse_visitor_file,
)
from origin.context.profile import features
from origin.context.rules import decide, explain, parse_rules, rule_problems
from origin.errors import AudienceInvalid
from tests.origin.context.test_rules import RULES, T0

V = "visitor-0001"
NOW = 1772400000.0  # 2026-03-01T21:20:00Z


def entered(audience: str = "spring_vip", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Audience Entered",
        "userId": V,
        "properties": {"audience_key": audience, audience: True},
        "timestamp": "2026-03-01T10:00:00Z",
        **extra,
    }


def test_track_and_identify_shapes_become_memberships() -> None:
    exited = {**entered(), "event": "Audience Exited", "timestamp": "2026-03-01T11:00:00+00:00"}
    identify = {
        "type": "identify",
        "anonymousId": V,
        "traits": {"spring_vip": True, "churn_risk": False, "plan": "gold", "Not An Id": True},
    }
    got = parse_body({"batch": [entered(), exited, identify]}, NOW)
    at = 1772359200.0  # 2026-03-01T10:00:00Z
    assert got == [
        Membership(V, "spring_vip", True, at),
        Membership(V, "spring_vip", False, at + 3600),
        Membership(V, "churn_risk", False, NOW),
        Membership(V, "spring_vip", True, NOW),
    ]


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"batch": []}, "batch"),
        ({"batch": [entered(), {**entered(), "event": "Signed Up"}]}, "batch[1].event"),
        ({"batch": [{**entered(), "properties": {}}]}, "batch[0].properties.audience_key"),
        ({**entered(), "userId": "has space"}, "userId"),
        ({**entered(), "userId": None, "anonymousId": None}, "userId"),
        ({**entered(), "anonymousId": "not valid"}, "anonymousId"),
        ({**entered(), "timestamp": None}, "timestamp"),
        ({**entered(), "timestamp": "yesterday"}, "timestamp"),
        ({**entered(), "timestamp": "2026-03-01T10:00:00"}, "timestamp"),
        ({**entered(), "type": "page"}, "type"),
        ({"type": "identify", "userId": V, "traits": [1]}, "traits"),
        ([1, 2], "message"),
    ],
)
def test_bad_messages_name_the_field(doc: Any, where: str) -> None:
    with pytest.raises(AudienceInvalid) as caught:
        parse_body(doc, NOW)
    assert caught.value.where == where


def test_a_timestamp_ahead_of_ours_counts_as_now() -> None:
    ahead = parse_message({**entered(), "timestamp": "2099-01-01T00:00:00z"}, NOW)
    assert ahead[0].at == NOW


def test_visitor_file_names_the_bad_line() -> None:
    good = parse_visitor_file(["# header", "", "abc-1", " def_2 "], "spring_vip", T0)
    assert [m.visitor for m in good] == ["abc-1", "def_2"]
    with pytest.raises(AudienceInvalid) as caught:
        parse_visitor_file(["abc-1", "bad id!"], "spring_vip", T0)
    assert caught.value.where == "line 2"
    with pytest.raises(AudienceInvalid) as named:
        parse_visitor_file(["abc-1"], "Spring VIP", T0)
    assert named.value.where == "audience"


def test_fold_is_last_writer_wins_whatever_the_order_and_duplicates() -> None:
    changes = [
        Membership(V, "a", True, 10.0),
        Membership(V, "a", False, 20.0),
        Membership(V, "b", True, 5.0),
        Membership(V, "b", False, 5.0),  # a tie: the exit wins
        Membership(V, "c", True, 30.0),
    ]
    outcomes = {
        tuple(sorted(fold({}, [*order, order[0]]).items()))
        for order in itertools.permutations(changes)
    }
    assert outcomes == {(("a", (False, 20.0)), ("b", (False, 5.0)), ("c", (True, 30.0)))}
    assert members(fold({}, changes)) == {"c"}
    late_entry = fold(fold({}, changes), [Membership(V, "a", True, 15.0)])
    assert members(late_entry) == {"c"}  # the exit at 20 stands


def test_audience_rules_decide_in_rule_order() -> None:
    vip = {
        "name": "vip",
        "segment": "vip-shoppers",
        "when": [{"feature": "audience:spring_vip", "op": "eq", "value": True}],
    }
    first = parse_rules({**RULES, "rules": [vip, *RULES["rules"]]})
    last = parse_rules({**RULES, "rules": [*RULES["rules"], vip]})
    shopper = features(None, T0, frozenset({"spring_vip"}))
    big_cart = features(None, T0, frozenset({"spring_vip"}))
    object.__setattr__(big_cart, "cart_value_cents", 20_000)
    assert decide(first, shopper, T0).explanation == "matched rule 1 (vip)"
    assert decide(first, big_cart, T0).explanation == "matched rule 1 (vip)"
    assert decide(last, big_cart, T0).explanation == "matched rule 2 (big-cart)"
    assert decide(last, shopper, T0).explanation == "matched rule 4 (vip)"
    assert decide(last, features(None, T0), T0).rule is None
    traced = explain(last, big_cart, T0)
    assert traced.decision == decide(last, big_cart, T0)
    assert [t.matched for t in traced.traces] == [False, True, False, True]
    assert traced.traces[1].conditions[0].text == "cart_value_cents gt 15000: is 20000, holds"


def test_audience_conditions_are_validated_and_problems_collected() -> None:
    bad_value = {
        "name": "vip",
        "segment": "vip",
        "when": [{"feature": "audience:spring_vip", "op": "eq", "value": "yes"}],
    }
    bad_op = {
        "name": "vip2",
        "segment": "vip",
        "when": [{"feature": "audience:spring_vip", "op": "gt", "value": True}],
    }
    problems = rule_problems(
        {"default_segment": "everyone", "rules": [bad_value, RULES["rules"][0], bad_op,
                                                   RULES["rules"][0]]}
    )  # fmt: skip
    assert problems == {
        "rules[1] (vip).when[0].value": "audience:spring_vip compares with true or false",
        "rules[3] (vip2).when[0].op": "'gt': for audience:spring_vip use one of eq, ne",
        "rules[4] (outdoor-browsers).name": "duplicate rule name",
    }
    assert rule_problems(RULES) == {}
