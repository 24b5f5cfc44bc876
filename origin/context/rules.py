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
lte), ``campaign`` (a string: eq, ne) and ``audience:<key>`` (a CDP audience,
`origin.context.audiences`: eq or ne true/false). Validation names the rule (1-based and by
name) and the field; `rule_problems` collects every problem of a document at once (the admin
form). `explain` traces every rule and condition for one visitor. Pure: no I/O.

Priority of CDP audiences against the rules: an audience never assigns a segment by itself. It
is a condition like any other, so a rule testing it decides in rule order: put it first to let
the CDP win over behaviour, after behaviour rules to let behaviour win.
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
PREFIXED_FEATURES = ("views:", "interest:", "audience:")
AUDIENCE_PREFIX = "audience:"
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
    value: float | str | bool
    within_minutes: int | None = None

    def holds(self, f: Features, now: float) -> bool:
        return self.check(f, now)[1]

    def check(self, f: Features, now: float) -> tuple[float | str | bool | None, bool]:
        """The feature's actual value and whether the condition holds."""
        actual = _value(self, f, now)
        return actual, self._holds(actual)

    def _holds(self, actual: float | str | bool | None) -> bool:
        if actual is None:
            return False
        if isinstance(self.value, bool) or isinstance(actual, bool):
            return (actual is self.value) == (self.op == "eq")
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


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    condition: Condition
    actual: float | str | bool | None
    holds: bool

    @property
    def text(self) -> str:
        c = self.condition
        window = f" within {c.within_minutes} min" if c.within_minutes else ""
        expected = json.dumps(c.value)
        actual = "none" if self.actual is None else json.dumps(self.actual)
        verdict = "holds" if self.holds else "fails"
        return f"{c.feature}{window} {c.op} {expected}: is {actual}, {verdict}"


@dataclass(frozen=True, slots=True)
class RuleTrace:
    number: int
    rule: Rule
    conditions: tuple[ConditionTrace, ...]

    @property
    def matched(self) -> bool:
        return all(c.holds for c in self.conditions)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Every rule evaluated for one visitor, and the decision (the first match wins)."""

    decision: Decision
    traces: tuple[RuleTrace, ...]


def explain(rules: RuleSet, f: Features, now: float) -> Explanation:
    """Evaluate every rule and condition (not only up to the first match) and say which
    decided: the same decision as `decide`."""
    traces = tuple(
        RuleTrace(
            number,
            rule,
            tuple(ConditionTrace(c, *c.check(f, now)) for c in rule.when),
        )
        for number, rule in enumerate(rules.rules, start=1)
    )
    first = next((t for t in traces if t.matched), None)
    if first is None:
        return Explanation(Decision(rules.default_segment, None, None), traces)
    return Explanation(Decision(first.rule.segment, first.number, first.rule.name), traces)


def decide(rules: RuleSet, f: Features, now: float) -> Decision:
    """The first rule whose conditions all hold, else the default segment."""
    for number, rule in enumerate(rules.rules, start=1):
        if all(c.holds(f, now) for c in rule.when):
            return Decision(rule.segment, number, rule.name)
    return Decision(rules.default_segment, None, None)


def _value(c: Condition, f: Features, now: float) -> float | str | bool | None:
    if c.feature.startswith(AUDIENCE_PREFIX):
        return c.feature.removeprefix(AUDIENCE_PREFIX) in f.audiences
    if c.feature.startswith("views:"):
        minutes = c.within_minutes or 0
        return f.views_within(c.feature.removeprefix("views:"), minutes * 60, now)
    if c.feature.startswith("interest:"):
        return f.interest.get(c.feature.removeprefix("interest:"), 0.0)
    if c.feature == "campaign":
        return f.campaign
    value: float | int | None = getattr(f, c.feature)
    return value


def _compare(actual: float, op: str, expected: float | str | bool) -> bool:
    assert not isinstance(expected, str | bool)
    return {
        "eq": actual == expected,
        "ne": actual != expected,
        "gt": actual > expected,
        "gte": actual >= expected,
        "lt": actual < expected,
        "lte": actual <= expected,
    }[op]


def rule_problems(doc: Any, known_segments: frozenset[str] | None = None) -> dict[str, str]:
    """Every problem of a rule-set document, by where (``rules[2] (big-cart).when[0].op``): the
    first problem of each rule, and of the document's own fields; empty when it parses."""
    try:
        parse_rules(doc, known_segments)
    except RulesInvalid as first:
        problems = {first.where: first.reason}
    else:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        return problems
    default = doc.get("default_segment")
    try:
        _segment(default, "default_segment", known_segments)
    except RulesInvalid as exc:
        problems[exc.where] = exc.reason
        default = "everyone"
    names: set[str] = set()
    for i, raw in enumerate(doc["rules"][:MAX_RULES]):
        try:
            parse_rules({"default_segment": default, "rules": [raw]}, known_segments)
        except RulesInvalid as exc:
            problems[exc.where.replace("rules[1]", f"rules[{i + 1}]", 1)] = exc.reason
            continue
        name = raw["name"]
        if name in names:
            problems[f"rules[{i + 1}] ({name}).name"] = "duplicate rule name"
        names.add(name)
    return problems


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
        known = ", ".join(
            [*NUMBER_FEATURES, *STRING_FEATURES, "views:<category>", "interest:<category>",
             "audience:<key>"]
        )  # fmt: skip
        raise RulesInvalid(f"{where}.feature", f"{feature!r}: expected one of {known}")
    is_string = feature in STRING_FEATURES
    is_audience = feature.startswith(AUDIENCE_PREFIX)
    op = raw.get("op")
    ops = STRING_OPS if is_string or is_audience else NUMBER_OPS
    if op not in ops:
        raise RulesInvalid(f"{where}.op", f"{op!r}: for {feature} use one of {', '.join(ops)}")
    value = raw.get("value")
    if is_audience:
        if not isinstance(value, bool):
            raise RulesInvalid(f"{where}.value", f"{feature} compares with true or false")
    elif is_string:
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
