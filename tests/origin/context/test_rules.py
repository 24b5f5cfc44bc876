"""Segment rules: validation messages name rule and field; evaluation is ordered and explained."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fragments.clickstream import ClickEvent
from origin.context.profile import apply_events, features
from origin.context.rules import decide, parse_rules
from origin.errors import RulesInvalid

T0 = 1_700_000_000.0
RULES: dict[str, Any] = {
    "default_segment": "everyone",
    "rules": [
        {
            "name": "outdoor-browsers",
            "segment": "outdoor-fans",
            "when": [{"feature": "views:outdoor", "op": "gte", "value": 3, "within_minutes": 30}],
        },
        {
            "name": "big-cart",
            "segment": "big-spenders",
            "when": [{"feature": "cart_value_cents", "op": "gt", "value": 15000}],
        },
        {
            "name": "spring",
            "segment": "bargain-hunters",
            "when": [{"feature": "campaign", "op": "eq", "value": "spring-sale"}],
        },
    ],
}


def view(n: int, at: float, category: str = "outdoor") -> ClickEvent:
    return ClickEvent(f"event-{n:04d}", "view", "v", "s", T0 + at, True, f"S{n}", category, 1000)


def cart(n: int, price: int) -> ClickEvent:
    return ClickEvent(f"event-{n:04d}", "add_to_cart", "v", "s", T0, True, f"C{n}", None, price)


def spring(n: int) -> ClickEvent:
    return ClickEvent(
        f"event-{n:04d}", "search", "v", "s", T0, True, None, "shoes", None, "spring-sale"
    )


@pytest.mark.parametrize(
    ("events", "segment", "explanation"),
    [
        ([view(1, 0)], "everyone", "no rule matched: the default segment"),
        ([view(1, 0), view(2, 60), view(3, 120)], "outdoor-fans",
         "matched rule 1 (outdoor-browsers)"),
        ([view(1, -3600), view(2, 60), view(3, 120)], "everyone",
         "no rule matched: the default segment"),
        ([cart(1, 10000), cart(2, 6000)], "big-spenders", "matched rule 2 (big-cart)"),
        ([spring(1)], "bargain-hunters", "matched rule 3 (spring)"),
        ([spring(1), cart(2, 20000)], "big-spenders", "matched rule 2 (big-cart)"),
    ],
)  # fmt: skip
def test_first_matching_rule_decides_and_explains(
    events: list[ClickEvent], segment: str, explanation: str
) -> None:
    rules = parse_rules(RULES)
    profile = apply_events(None, events)
    assert profile is not None
    decision = decide(rules, features(profile, T0 + 120), T0 + 120)
    assert (decision.segment, decision.explanation) == (segment, explanation)


def _with(rule: int, **change: Any) -> dict[str, Any]:
    doc = {**RULES, "rules": [dict(r) for r in RULES["rules"]]}
    doc["rules"][rule - 1].update(change)
    return doc


def _cond(rule: int, **change: Any) -> dict[str, Any]:
    doc = {**RULES, "rules": [dict(r) for r in RULES["rules"]]}
    doc["rules"][rule - 1]["when"] = [{**RULES["rules"][rule - 1]["when"][0], **change}]
    return doc


@pytest.mark.parametrize(
    ("doc", "where", "reason"),
    [
        (_with(2, segment="Big Spenders"), "rules[2] (big-cart).segment", "segment id"),
        (_with(2, name="outdoor-browsers"), "rules[2] (outdoor-browsers).name", "duplicate"),
        (_with(3, when=[]), "rules[3] (spring).when", "1-10 conditions"),
        (_cond(2, op="between"), "rules[2] (big-cart).when[0].op", "gte"),
        (_cond(2, value="lots"), "rules[2] (big-cart).when[0].value", "finite number"),
        (_cond(3, op="gt"), "rules[3] (spring).when[0].op", "eq, ne"),
        (_cond(1, within_minutes=None), "rules[1] (outdoor-browsers).when[0].within_minutes",
         "window"),
        (_cond(2, within_minutes=5), "rules[2] (big-cart).when[0].within_minutes", "only views"),
        (_cond(2, feature="shoe_size"), "rules[2] (big-cart).when[0].feature", "expected one of"),
        ({**RULES, "extra": 1}, "extra", "unknown key"),
    ],
)  # fmt: skip
def test_validation_names_rule_and_field(doc: dict[str, Any], where: str, reason: str) -> None:
    with pytest.raises(RulesInvalid) as caught:
        parse_rules(doc)
    assert caught.value.where == where
    assert reason in caught.value.reason


def test_unknown_segments_are_refused_when_segments_are_known() -> None:
    with pytest.raises(RulesInvalid, match=r"rules\[1\] \(outdoor-browsers\)\.segment"):
        parse_rules(RULES, frozenset({"everyone", "big-spenders", "bargain-hunters"}))


def test_rules_round_trip() -> None:
    rules = parse_rules(RULES)
    assert parse_rules(json.loads(rules.to_json())) == rules
