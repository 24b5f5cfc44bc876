"""Custom-label rules: which products a slot (or an experiment variant) may show, by label.

Merchant Center's ``custom_label_0`` .. ``custom_label_4`` are free labels a retailer sets per
product ("summer", "clearance", "bestseller"). A `LabelRule` restricts and weighs a slot's
candidates by them:

- ``include``: label -> values; a product is a candidate only if, for every label named, its
  value is one of those given (an empty label never matches);
- ``exclude``: label -> values; a product whose label has one of those values is never a
  candidate;
- ``boost``: (label, value, factor) entries; a matching product's score is multiplied by the
  factor (above 1 lifts it, below 1 buries it).

Values compare case-insensitively, surrounding spaces ignored (Merchant Center treats labels
so). The rule's `factor` is what the origin's scoring multiplies a score by (0: not a
candidate). The same parser reads a slot's ``include_labels`` / ``exclude_labels`` /
``label_boost`` in slots.toml and a variant's ``changes.labels`` in an experiment; errors name
the field. Stdlib only (imported under Pyodide); never performs I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fragments.errors import FieldInvalid

LABEL_COUNT = 5
LABEL_NAMES = tuple(f"custom_label_{n}" for n in range(LABEL_COUNT))
"""The label names as feeds and configuration spell them."""
MAX_LABEL_VALUES = 100
MAX_LABEL_FACTOR = 100.0


class LabelRuleInvalid(FieldInvalid):
    """A label rule that cannot be used; `field` is its path (``include.custom_label_0``)."""


@dataclass(frozen=True, slots=True)
class LabelBoost:
    """Multiply the score of products whose label `label` (0..4) equals `value` by `factor`."""

    label: int
    value: str
    factor: float


@dataclass(frozen=True, slots=True)
class LabelRule:
    """Include / exclude / boost by custom label (see the module docstring)."""

    include: tuple[tuple[int, frozenset[str]], ...] = ()
    exclude: tuple[tuple[int, frozenset[str]], ...] = ()
    boosts: tuple[LabelBoost, ...] = ()

    @property
    def active(self) -> bool:
        """Whether the rule changes anything (an empty rule leaves every score as it is)."""
        return bool(self.include or self.exclude or self.boosts)

    def factor(self, labels: Sequence[str]) -> float:
        """What a product with `labels` (custom_label_0..4, in order) has its score multiplied
        by: 0.0 when the rule keeps it out, else the product of the matching boosts."""
        if not self.active:
            return 1.0
        values = [label.strip().lower() for label in labels]
        for index, allowed in self.include:
            if values[index] not in allowed:
                return 0.0
        for index, denied in self.exclude:
            if values[index] in denied:
                return 0.0
        factor = 1.0
        for boost in self.boosts:
            if values[boost.label] == boost.value:
                factor *= boost.factor
        return factor

    def admits(self, labels: Sequence[str]) -> bool:
        """Whether a product with `labels` may be a candidate at all."""
        return self.factor(labels) > 0.0

    def to_dict(self) -> dict[str, object]:
        """The JSON form `parse_label_rule` reads back (empty parts left out)."""
        out: dict[str, object] = {}
        if self.include:
            out["include"] = {LABEL_NAMES[i]: sorted(v) for i, v in self.include}
        if self.exclude:
            out["exclude"] = {LABEL_NAMES[i]: sorted(v) for i, v in self.exclude}
        if self.boosts:
            out["boost"] = [
                {LABEL_NAMES[b.label]: b.value, "factor": b.factor} for b in self.boosts
            ]
        return out


NO_LABEL_RULE = LabelRule()


def parse_label_rule(include: object, exclude: object, boost: object) -> LabelRule:
    """A `LabelRule` from its three parts as decoded from TOML or JSON (None: absent).

    ``include`` / ``exclude``: ``{"custom_label_N": ["value", ...]}``; ``boost``: a list of
    ``{"custom_label_N": "value", "factor": 1.5}``. Raises `LabelRuleInvalid` naming the field.
    """
    boosts: list[LabelBoost] = []
    if boost is not None:
        if not isinstance(boost, list):
            raise LabelRuleInvalid("boost", "must be a list of {custom_label_N = value, factor}")
        for i, item in enumerate(boost):
            where = f"boost[{i}]"
            if not isinstance(item, Mapping):
                raise LabelRuleInvalid(where, "must be a table {custom_label_N = value, factor}")
            names = [k for k in item if k != "factor"]
            if len(names) != 1:
                raise LabelRuleInvalid(where, "name exactly one label (custom_label_0..4)")
            index = _label_index(f"{where}.{names[0]}", names[0])
            factor = item.get("factor")
            if (
                isinstance(factor, bool)
                or not isinstance(factor, int | float)
                or not 0.0 < factor <= MAX_LABEL_FACTOR
                or factor == 1.0
            ):
                raise LabelRuleInvalid(
                    f"{where}.factor",
                    f"{factor!r}: a number in (0, {MAX_LABEL_FACTOR:g}], not 1 (above 1 lifts, "
                    "below 1 buries)",
                )
            value = _value(f"{where}.{names[0]}", item[names[0]])
            boosts.append(LabelBoost(index, value, float(factor)))
    return LabelRule(
        include=_value_sets("include", include),
        exclude=_value_sets("exclude", exclude),
        boosts=tuple(boosts),
    )


def _value_sets(field: str, raw: object) -> tuple[tuple[int, frozenset[str]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise LabelRuleInvalid(field, 'must be a table {custom_label_N = ["value", ...]}')
    out: list[tuple[int, frozenset[str]]] = []
    for name, values in raw.items():
        where = f"{field}.{name}"
        index = _label_index(where, name)
        if not isinstance(values, list) or not values or len(values) > MAX_LABEL_VALUES:
            raise LabelRuleInvalid(where, f"must be a list of 1..{MAX_LABEL_VALUES} values")
        out.append((index, frozenset(_value(f"{where}[{i}]", v) for i, v in enumerate(values))))
    return tuple(sorted(out, key=lambda pair: pair[0]))


def _label_index(field: str, name: object) -> int:
    if name not in LABEL_NAMES:
        raise LabelRuleInvalid(field, f"unknown label; use one of {', '.join(LABEL_NAMES)}")
    return LABEL_NAMES.index(str(name))


def _value(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise LabelRuleInvalid(field, f"{value!r}: a label value is 1-100 characters of text")
    return value.strip().lower()
