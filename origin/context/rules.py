"""Segment rules: ordered conditions on profile features that assign a shopper's segment.

A rule set is a JSON document, edited by marketers (``PUT /v1/segment-rules``)::

    {"default_segment": "everyone",
     "rules": [{"name": "outdoor-browsers", "segment": "outdoor-fans",
                "when": [{"feature": "views:outdoor", "op": "gte", "value": 3,
                          "within_minutes": 30}]},
               {"name": "big-cart", "segment": "big-spenders",
                "when": [{"feature": "cart_value_cents", "op": "gt", "value": 15000}]},
               {"name": "spring", "segment": "bargain-hunters",
                "when": [{"feature": "campaign", "op": "eq", "value": "spring-sale"}]}]}

The first rule whose conditions all hold decides ("matched rule 2 (big-cart)"); none: the
default segment. Features: ``views:<category>`` (views within ``within_minutes``, required),
``interest:<category>`` (decayed views), ``cart_value_cents``, ``visits``,
``median_viewed_price_cents``, ``days_since_first_seen`` (numbers: ops eq, ne, gt, gte, lt,
lte) and ``campaign`` (a string: eq, ne). Validation names the rule (1-based and by name) and
the field. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from fragments.ids import is_id
from origin.context.profile import Features
from origin.errors import RulesInvalid

NUMBER_FEATURES = (
    "cart_value_cents", "visits", "median_viewed_price_cents", "days_since_first_seen",
)  # fmt: skip
PREFIXED_FEATURES = ("views:", "interest:")
STRING_FEATURES = ("campaign",)
NUMBER_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
STRING_OPS = ("eq", "ne")
MAX_RULES = 100
MAX_CONDITIONS = 10
MAX_WINDOW_MINUTES = 30 * 24 * 60


@dataclass(frozen=True, slots=True)
class Condition:
    feature: str
    op: str
    value: float | str
    within_minutes: int | None = None

    def holds(self, f: Features, now: float) -> bool:
        actual = _value(self, f, now)
        if actual is None:
            return False
        if isinstance(self.value, str) or isinstance(actual, str):
            return (actual == self.value) == (self.op == "eq")
        return _compare(float(actual), self.op, self.value)

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"feature": self.feature, "op": self.op, "value": self.value}
        if self.within_minutes is not None:
            doc["within_minutes"] = self.within_minutes
        return doc


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    segment: str
    when: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class RuleSet:
    default_segment: str
    rules: tuple[Rule, ...]

    def to_json(self) -> str:
        doc = {
            "default_segment": self.default_segment,
            "rules": [
                {"name": r.name, "segment": r.segment, "when": [c.to_doc() for c in r.when]}
                for r in self.rules
            ],
        }
        return json.dumps(doc, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Decision:
    """A segment and why: the rule (1-based) that matched, or None for the default."""

    segment: str
    rule: int | None
    rule_name: str | None

    @property
    def explanation(self) -> str:
        if self.rule is None:
            return "no rule matched: the default segment"
        return f"matched rule {self.rule} ({self.rule_name})"


def decide(rules: RuleSet, f: Features, now: float) -> Decision:
    """The first rule whose conditions all hold, else the default segment."""
    for number, rule in enumerate(rules.rules, start=1):
        if all(c.holds(f, now) for c in rule.when):
            return Decision(rule.segment, number, rule.name)
    return Decision(rules.default_segment, None, None)


def _value(c: Condition, f: Features, now: float) -> float | str | None:
    if c.feature.startswith("views:"):
        minutes = c.within_minutes or 0
        return f.views_within(c.feature.removeprefix("views:"), minutes * 60, now)
    if c.feature.startswith("interest:"):
        return f.interest.get(c.feature.removeprefix("interest:"), 0.0)
    if c.feature == "campaign":
        return f.campaign
    value: float | int | None = getattr(f, c.feature)
    return value


def _compare(actual: float, op: str, expected: float | str) -> bool:
    assert not isinstance(expected, str)
    return {
        "eq": actual == expected,
        "ne": actual != expected,
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[op]


def parse_rules(doc: Any, known_segments: frozenset[str] | None = None) -> RuleSet:
    """Validate a rule-set document; RulesInvalid names the rule and field. With
    `known_segments`, every segment must be one of them."""
    if not isinstance(doc, dict):
        raise RulesInvalid("document", "must be a JSON object with default_segment and rules")
    unknown = sorted(set(doc) - {"default_segment", "rules"})
    if unknown:
        raise RulesInvalid(unknown[0], "unknown key; expected default_segment, rules")
    default = _segment(doc.get("default_segment"), "default_segment", known_segments)
    raw_rules = doc.get("rules")
    if not isinstance(raw_rules, list) or len(raw_rules) > MAX_RULES:
        raise RulesInvalid("rules", f"must be a list of at most {MAX_RULES} rules")
    rules: list[Rule] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_rules):
        where = f"rules[{i + 1}]"
        if not isinstance(raw, dict):
            raise RulesInvalid(where, "must be an object with name, segment, when")
        name = raw.get("name")
        if not isinstance(name, str) or not is_id(name):
            raise RulesInvalid(f"{where}.name", "1-64 chars of a-z, 0-9, -, _")
        where = f"rules[{i + 1}] ({name})"
        if name in names:
            raise RulesInvalid(f"{where}.name", "duplicate rule name")
        names.add(name)
        extra = sorted(set(raw) - {"name", "segment", "when"})
        if extra:
            raise RulesInvalid(f"{where}.{extra[0]}", "unknown key; expected name, segment, when")
        segment = _segment(raw.get("segment"), f"{where}.segment", known_segments)
        when = raw.get("when")
        if not isinstance(when, list) or not 1 <= len(when) <= MAX_CONDITIONS:
            raise RulesInvalid(f"{where}.when", f"a list of 1-{MAX_CONDITIONS} conditions")
        conditions = tuple(_condition(c, f"{where}.when[{j}]") for j, c in enumerate(when))
        rules.append(Rule(name, segment, conditions))
    return RuleSet(default, tuple(rules))


def _segment(value: Any, where: str, known: frozenset[str] | None) -> str:
    if not isinstance(value, str) or not is_id(value):
        raise RulesInvalid(where, "a segment id (1-64 chars of a-z, 0-9, -, _)")
    if known is not None and value not in known:
        raise RulesInvalid(where, f"unknown segment {value!r}; known: {', '.join(sorted(known))}")
    return value


def _condition(raw: Any, where: str) -> Condition:
    if not isinstance(raw, dict):
        raise RulesInvalid(where, "must be an object with feature, op, value")
    extra = sorted(set(raw) - {"feature", "op", "value", "within_minutes"})
    if extra:
        raise RulesInvalid(f"{where}.{extra[0]}", "unknown key")
    feature = raw.get("feature")
    prefixed = isinstance(feature, str) and any(
        feature.startswith(p) and is_id(feature[len(p) :]) for p in PREFIXED_FEATURES
    )
    if not isinstance(feature, str) or not (
        prefixed or feature in NUMBER_FEATURES or feature in STRING_FEATURES
    ):
        known = ", ".join([*NUMBER_FEATURES, *STRING_FEATURES, "views:<category>"])
        raise RulesInvalid(f"{where}.feature", f"{feature!r}: expected one of {known}, ...")
    is_string = feature in STRING_FEATURES
    op = raw.get("op")
    ops = STRING_OPS if is_string else NUMBER_OPS
    if op not in ops:
        raise RulesInvalid(f"{where}.op", f"{op!r}: for {feature} use one of {', '.join(ops)}")
    value = raw.get("value")
    if is_string:
        if not isinstance(value, str) or not is_id(value):
            raise RulesInvalid(f"{where}.value", f"{feature} compares with an id")
    elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RulesInvalid(f"{where}.value", f"{feature} compares with a finite number")
    window = raw.get("within_minutes")
    if feature.startswith("views:"):
        if (
            isinstance(window, bool)
            or not isinstance(window, int)
            or not 1 <= window <= MAX_WINDOW_MINUTES
        ):
            raise RulesInvalid(
                f"{where}.within_minutes", f"views need a window of 1-{MAX_WINDOW_MINUTES} minutes"
            )
    elif window is not None:
        raise RulesInvalid(f"{where}.within_minutes", "only views:<category> take a window")
    return Condition(feature, str(op), value, window)
