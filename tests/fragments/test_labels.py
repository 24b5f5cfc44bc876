"""Custom-label rules: what they admit and boost, and errors that name the field (slots.toml,
experiment variants)."""

from __future__ import annotations

import pytest

from fragments.errors import SlotConfigError
from fragments.experiment_codec import experiment_from_dict, experiment_to_dict
from fragments.experiments import ExperimentInvalid
from fragments.labels import LabelBoost, LabelRule, LabelRuleInvalid, parse_label_rule
from fragments.slots import parse_slots

SUMMER_ONLY = parse_label_rule({"custom_label_1": ["Summer"]}, None, None)
NO_CLEARANCE = parse_label_rule(None, {"custom_label_0": ["clearance"]}, None)
BEST_UP = parse_label_rule(None, None, [{"custom_label_2": "best", "factor": 2.0}])


def labels(*values: str) -> tuple[str, ...]:
    return (*values, *([""] * (5 - len(values))))


@pytest.mark.parametrize(
    ("rule", "product_labels", "factor"),
    [
        (LabelRule(), labels(), 1.0),
        (SUMMER_ONLY, labels("", "summer"), 1.0),
        (SUMMER_ONLY, labels("", " SUMMER "), 1.0),  # case and spaces do not matter
        (SUMMER_ONLY, labels("", "winter"), 0.0),
        (SUMMER_ONLY, labels(), 0.0),  # an empty label never matches an include
        (NO_CLEARANCE, labels("clearance"), 0.0),
        (NO_CLEARANCE, labels("new"), 1.0),
        (BEST_UP, labels("", "", "best"), 2.0),
        (BEST_UP, labels("", "", "worst"), 1.0),
    ],
)
def test_a_rule_admits_excludes_and_boosts_by_label(
    rule: LabelRule, product_labels: tuple[str, ...], factor: float
) -> None:
    assert rule.factor(product_labels) == factor
    assert rule.admits(product_labels) == (factor > 0)


def test_a_rule_round_trips_through_its_json_form() -> None:
    rule = parse_label_rule(
        {"custom_label_1": ["summer", "spring"]},
        {"custom_label_0": ["clearance"]},
        [{"custom_label_4": "promo", "factor": 0.5}],
    )
    assert rule.boosts == (LabelBoost(4, "promo", 0.5),)
    again = rule.to_dict()
    assert parse_label_rule(again.get("include"), again.get("exclude"), again.get("boost")) == rule


@pytest.mark.parametrize(
    ("include", "exclude", "boost", "field"),
    [
        ({"custom_label_9": ["x"]}, None, None, "include.custom_label_9"),
        ({"custom_label_0": []}, None, None, "include.custom_label_0"),
        ({"custom_label_0": [3]}, None, None, "include.custom_label_0[0]"),
        (None, ["x"], None, "exclude"),
        (None, None, [{"custom_label_0": "x", "factor": 1}], "boost[0].factor"),
        (None, None, [{"factor": 2}], "boost[0]"),
        (None, None, [{"custom_label_0": "x", "custom_label_1": "y", "factor": 2}], "boost[0]"),
    ],
)
def test_an_invalid_rule_names_its_field(
    include: object, exclude: object, boost: object, field: str
) -> None:
    with pytest.raises(LabelRuleInvalid) as caught:
        parse_label_rule(include, exclude, boost)
    assert caught.value.field == field


SLOT = """
[slots.summer-row]
title = "Summer"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = 20
shown = 4
{extra}
[slots.summer-row.policy]
max_age = 30
stale_while_revalidate = 60
stale_if_error = 600
"""


def test_a_slot_reads_its_label_rule() -> None:
    extra = (
        'include_labels = {custom_label_1 = ["summer"]}\n'
        'exclude_labels = {custom_label_0 = ["clearance"]}\n'
        'label_boost = [{custom_label_2 = "best", factor = 1.5}]'
    )
    slot = parse_slots(SLOT.format(extra=extra)).slots["summer-row"]
    assert slot.labels.include == ((1, frozenset({"summer"})),)
    assert slot.labels.exclude == ((0, frozenset({"clearance"})),)
    assert slot.labels.boosts == (LabelBoost(2, "best", 1.5),)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ('include_labels = {custom_label_7 = ["x"]}', "'include_labels.custom_label_7'"),
        ('exclude_labels = {custom_label_0 = "x"}', "'exclude_labels.custom_label_0'"),
        ('label_boost = [{custom_label_0 = "x", factor = 0}]', "'label_boost[0].factor'"),
        ('include_labels = {custom_label_0 = ["x"]}\nanchor = "product"', "anchored slot"),
    ],
)
def test_an_invalid_slot_label_rule_names_the_slot_and_the_field(extra: str, named: str) -> None:
    with pytest.raises(SlotConfigError) as caught:
        parse_slots(SLOT.format(extra=extra), "shop-slots.toml")
    assert caught.value.slot == "summer-row"
    assert named in str(caught.value)
    assert "shop-slots.toml" in str(caught.value)


def experiment(changes: dict[str, object]) -> dict[str, object]:
    return {
        "key": "summer-test",
        "name": "Summer only",
        "status": "draft",
        "slots": ["home-hero"],
        "variants": [
            {"id": "control", "name": "Control", "weight": 0.5},
            {"id": "summer", "name": "Summer", "weight": 0.5, "changes": changes},
        ],
    }


def test_an_experiment_variant_overrides_the_label_rule() -> None:
    parsed = experiment_from_dict(
        experiment({"labels": {"include": {"custom_label_1": ["Summer"]}}})
    )
    changes = parsed.variants[1].changes
    assert changes.labels == SUMMER_ONLY
    assert changes.changes_bundle
    assert experiment_from_dict(experiment_to_dict(parsed)) == parsed


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        (
            {"include": {"custom_label_5": ["x"]}},
            "variants[1].changes.labels.include.custom_label_5",
        ),
        ({"only": {}}, "variants[1].changes.labels.only"),
        ({"boost": [{"custom_label_0": "x"}]}, "variants[1].changes.labels.boost[0].factor"),
    ],
)
def test_an_invalid_variant_label_rule_names_the_field(
    labels: dict[str, object], field: str
) -> None:
    with pytest.raises(ExperimentInvalid) as caught:
        experiment_from_dict(experiment({"labels": labels}))
    assert field in caught.value.problems
