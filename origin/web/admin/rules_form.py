"""The segment-rules form <-> the API's rule-set document: pure, no I/O.

Field names: ``default_segment``, ``base_version``, and per rule row i (1-based, in the order
shown) ``rules[i].name``, ``.segment``, ``.position`` (the order to save in), ``.delete`` and
per condition row j (0-based) ``rules[i].when[j].feature``, ``.op``, ``.value``,
``.within_minutes``. The page always shows one blank rule and one blank condition per rule, so
adding works without JavaScript; blank rows are ignored. Problems from
`origin.context.rules.rule_problems` (``rules[2] (big-cart).when[0].op``) are mapped back to the
form row they came from (`placement`), so each is shown next to its field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from origin.context.rules import AUDIENCE_PREFIX, STRING_FEATURES, RuleSet

MAX_ROWS = 100
MAX_CONDITION_ROWS = 10
_NAME = re.compile(r"rules\[(\d{1,3})\]\.(name|segment|position|delete)")
_COND = re.compile(r"rules\[(\d{1,3})\]\.when\[(\d{1,2})\]\.(feature|op|value|within_minutes)")
_WHERE = re.compile(r"rules\[(\d+)\](?: \([^)]*\))?(?:\.when\[(\d+)\])?(?:\.(\w+))?$")


@dataclass(slots=True)
class ConditionRow:
    feature: str = ""
    op: str = ""
    value: str = ""
    within_minutes: str = ""

    @property
    def blank(self) -> bool:
        return not (self.feature.strip() or self.value.strip() or self.within_minutes.strip())


@dataclass(slots=True)
class RuleRow:
    name: str = ""
    segment: str = ""
    position: str = ""
    delete: bool = False
    when: list[ConditionRow] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not (self.name.strip() or self.segment.strip()) and all(c.blank for c in self.when)


@dataclass(slots=True)
class RulesFields:
    default_segment: str = "everyone"
    base_version: str = "0"
    rules: list[RuleRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Converted:
    """The document to validate, where each of its rules and conditions came from in the form
    (``rows[k]``: the form row of document rule k+1; ``conditions[k][m]``: the form condition
    row of its condition m), and the problems found while converting."""

    document: dict[str, object]
    rows: tuple[int, ...]
    conditions: tuple[tuple[int, ...], ...]
    problems: dict[str, str]


def from_rules(rules: RuleSet, version: int) -> RulesFields:
    """The form for a stored rule set, with blank rows to add to."""
    rows = [
        RuleRow(
            r.name,
            r.segment,
            str(n),
            False,
            [
                ConditionRow(
                    c.feature,
                    c.op,
                    _show(c.value),
                    "" if c.within_minutes is None else str(c.within_minutes),
                )
                for c in r.when
            ],
        )
        for n, r in enumerate(rules.rules, start=1)
    ]
    return with_blank_rows(RulesFields(rules.default_segment, str(version), rows))


def with_blank_rows(fields: RulesFields) -> RulesFields:
    """`fields` ending with a blank condition in every rule and a blank rule (up to the
    maxima); rows keep their indexes, so problems stay next to their fields."""
    rows = list(fields.rules)
    for row in rows:
        if (not row.when or not row.when[-1].blank) and len(row.when) < MAX_CONDITION_ROWS:
            row.when.append(ConditionRow())
    if (not rows or not rows[-1].blank) and len(rows) < MAX_ROWS:
        rows.append(RuleRow(position=str(len(rows) + 1), when=[ConditionRow()]))
    return RulesFields(fields.default_segment, fields.base_version, rows)


def from_form(items: Iterable[tuple[str, str]]) -> RulesFields:
    """The posted fields (unknown names and out-of-range rows ignored)."""
    fields = RulesFields(default_segment="", base_version="")
    rows: dict[int, RuleRow] = {}
    for name, value in items:
        if name == "default_segment":
            fields.default_segment = value.strip()
        elif name == "base_version":
            fields.base_version = value.strip()
        elif found := _NAME.fullmatch(name):
            index = int(found.group(1))
            if 1 <= index <= MAX_ROWS + 1:
                row = rows.setdefault(index, RuleRow())
                attr = found.group(2)
                if attr == "delete":
                    row.delete = value == "1"
                else:
                    setattr(row, attr, value.strip())
        elif found := _COND.fullmatch(name):
            index, j = int(found.group(1)), int(found.group(2))
            if 1 <= index <= MAX_ROWS + 1 and j < MAX_CONDITION_ROWS + 1:
                row = rows.setdefault(index, RuleRow())
                while len(row.when) <= j:
                    row.when.append(ConditionRow())
                setattr(row.when[j], found.group(3), value.strip())
    fields.rules = [rows[i] for i in sorted(rows)]
    return fields


def to_document(fields: RulesFields) -> Converted:
    """The rule-set document the form stands for (deleted and blank rows dropped, rules in
    `position` order, values typed by their feature)."""
    problems: dict[str, str] = {}
    kept: list[tuple[float, int, RuleRow]] = []
    for i, row in enumerate(fields.rules, start=1):
        if row.delete or row.blank:
            continue
        try:
            position = float(row.position) if row.position else float(i)
        except ValueError:
            problems[f"rules[{i}].position"] = "a number (the order rules are tried in)"
            position = float(i)
        kept.append((position, i, row))
    kept.sort(key=lambda t: (t[0], t[1]))
    rules: list[dict[str, object]] = []
    origins: list[int] = []
    conditions: list[tuple[int, ...]] = []
    for _, i, row in kept:
        when: list[dict[str, object]] = []
        came_from: list[int] = []
        for j, c in enumerate(row.when):
            if c.blank:
                continue
            doc: dict[str, object] = {"feature": c.feature, "op": c.op}
            doc["value"] = _typed(c, f"rules[{i}].when[{j}].value", problems)
            if c.within_minutes:
                doc["within_minutes"] = _whole(
                    c.within_minutes, f"rules[{i}].when[{j}].within_minutes", problems
                )
            when.append(doc)
            came_from.append(j)
        rules.append({"name": row.name, "segment": row.segment, "when": when})
        origins.append(i)
        conditions.append(tuple(came_from))
    document: dict[str, object] = {"default_segment": fields.default_segment, "rules": rules}
    return Converted(document, tuple(origins), tuple(conditions), problems)


def placement(where: str, converted: Converted) -> str | None:
    """The form field a validation problem belongs next to (None: the summary only)."""
    if where == "default_segment":
        return where
    found = _WHERE.fullmatch(where)
    if found is None:
        return None
    k = int(found.group(1)) - 1
    if not 0 <= k < len(converted.rows):
        return None
    row = converted.rows[k]
    attr = found.group(3)
    if found.group(2) is None:
        return f"rules[{row}].{attr or 'name'}" if attr != "when" else f"rules[{row}].when"
    m = int(found.group(2))
    if not 0 <= m < len(converted.conditions[k]):
        return None
    return f"rules[{row}].when[{converted.conditions[k][m]}].{attr or 'feature'}"


def _typed(c: ConditionRow, where: str, problems: dict[str, str]) -> object:
    text = c.value
    if c.feature in STRING_FEATURES:
        return text
    if c.feature.startswith(AUDIENCE_PREFIX):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        problems[where] = "true or false (member of the audience or not)"
        return text
    try:
        number = float(text)
    except ValueError:
        problems[where] = f"{text[:40]!r} is not a number"
        return text
    if not math.isfinite(number):
        problems[where] = "a finite number"
        return text
    return int(number) if number.is_integer() else number


def _whole(text: str, where: str, problems: dict[str, str]) -> object:
    if text.isascii() and text.isdigit() and len(text) <= 6:
        return int(text)
    problems[where] = "whole minutes"
    return text


def _show(value: float | str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else json.dumps(value)
