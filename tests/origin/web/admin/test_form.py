"""The experiment form <-> API document conversion (pure, table-driven)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from fragments.experiment_codec import experiment_from_dict
from fragments.experiments import (
    Analysis,
    Condition,
    Experiment,
    Guardrail,
    Namespace,
    Targeting,
    Variant,
    VariantChanges,
)
from fragments.labels import parse_label_rule
from origin.web.admin import form as forms
from origin.web.admin.placement import error_slots, placement
from origin.web.admin.validation import decode

FULL = Experiment(
    key="hero-full",
    name="Everything set",
    status="paused",
    slots=("home-hero", "cart-upsell"),
    variants=(
        Variant("control", "Control", 0.4),
        Variant(
            "compact",
            "Compact",
            0.35,
            VariantChanges(
                wrapper_template="row_wrapper.html.j2",
                card_template="card_compact.html.j2",
                scoring={"popularity": 3.0, "margin": 0.25},
                shown=6,
                recency_boost=1.5,
                price_floor=0.2,
                labels=parse_label_rule(
                    {"custom_label_0": ["summer", "back to school", 'sale, 20% "off"']},
                    {"custom_label_1": ["discontinued"]},
                    [{"custom_label_2": "bestseller", "factor": 1.5}],
                ),
            ),
        ),
        Variant("plain", "Plain", 0.25, VariantChanges(origin_rendered=True)),
    ),
    targeting=Targeting(
        segments=("bargain-hunters",),
        countries=("DE", "AT"),
        devices=("mobile",),
        path_patterns=("/products/*", "/"),
        conditions=(
            Condition("cart_size", "gt", 0.0),
            Condition("locale", "in", ["de-DE", "en-US"]),
            Condition("consent", "eq", "1"),
        ),
    ),
    coverage=0.8,
    hash_seed="seed-1",
    hash_version=1,
    bucket_version=3,
    namespace=Namespace("hero", 0.0, 0.5),
    holdout=0.05,
    starts_at=1_800_000_000.0,
    ends_at=1_800_086_400.0,
    version=7,
    analysis=Analysis(
        primary_metric="revenue",
        guardrails=(Guardrail("add_to_cart", 0.05), Guardrail("click", 0.125)),
        correction="bh",
        minimum_visitors=2500,
        cuped=True,
        mde=0.03,
    ),
)


def posted(fields: forms.ExperimentFields) -> list[tuple[str, str]]:
    """What a browser posts for `fields` (the form's names and values)."""
    pairs = [
        ("key", fields.key), ("name", fields.name), ("status", fields.status),
        ("version", fields.version), ("targeting.countries", fields.countries),
        ("targeting.path_patterns", fields.path_patterns),
        ("targeting.conditions", fields.conditions), ("coverage", fields.coverage),
        ("holdout", fields.holdout), ("namespace.id", fields.namespace_id),
        ("namespace.start", fields.namespace_start), ("namespace.end", fields.namespace_end),
        ("hash_version", fields.hash_version), ("hash_seed", fields.hash_seed),
        ("bucket_version", fields.bucket_version), ("starts_at", fields.starts_at),
        ("ends_at", fields.ends_at), ("analysis.primary_metric", fields.primary_metric),
        ("analysis.guardrails", fields.guardrails), ("analysis.correction", fields.correction),
        ("analysis.minimum_visitors", fields.minimum_visitors), ("analysis.mde", fields.mde),
    ]  # fmt: skip
    if fields.cuped:
        pairs.append(("analysis.cuped", "1"))
    pairs += [("slots", s) for s in fields.slots]
    pairs += [("targeting.segments", s) for s in fields.segments]
    pairs += [("targeting.devices", d) for d in fields.devices]
    for i, v in enumerate(fields.variants):
        p = f"variants[{i}]"
        pairs += [
            (f"{p}.id", v.id), (f"{p}.name", v.name), (f"{p}.weight", v.weight),
            (f"{p}.changes.wrapper_template", v.wrapper_template),
            (f"{p}.changes.card_template", v.card_template), (f"{p}.changes.shown", v.shown),
            (f"{p}.changes.recency_boost", v.recency_boost),
            (f"{p}.changes.price_floor", v.price_floor),
            (f"{p}.changes.labels.include", v.labels_include),
            (f"{p}.changes.labels.exclude", v.labels_exclude),
            (f"{p}.changes.labels.boost", v.labels_boost),
        ]  # fmt: skip
        pairs += [(f"{p}.changes.scoring.{k}", raw) for k, raw in v.scoring.items()]
        if v.origin_rendered:
            pairs.append((f"{p}.changes.origin_rendered", "1"))
    return pairs


def test_an_experiment_survives_form_and_back_unchanged() -> None:
    fields = forms.from_experiment(FULL)
    again = forms.from_form(posted(fields))
    doc, problems = forms.to_document(again)

    assert again == fields
    assert problems == {}
    assert experiment_from_dict(doc) == FULL


def test_the_blank_form_is_a_valid_fifty_fifty_draft() -> None:
    fields = replace(forms.blank(), key="new-one", name="New", slots=("home-hero",))

    checked = decode(fields)

    assert checked.problems == {}
    assert checked.experiment is not None
    assert [(v.id, v.weight) for v in checked.experiment.variants] == [
        ("control", 0.5),
        ("challenger", 0.5),
    ]
    assert checked.experiment.coverage == 1.0
    assert checked.experiment.status == "draft"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"coverage": "lots"}, ("coverage", "'lots' is not a number")),
        ({"coverage": ""}, ("coverage", "enter a number")),
        ({"coverage": "inf"}, ("coverage", "enter a finite number")),
        ({"bucket_version": "1.5"}, ("bucket_version", "'1.5' is not a whole number")),
        ({"starts_at": "next tuesday"}, ("starts_at", "use the date picker")),
        ({"conditions": "cart_size bigger 3"}, ("targeting.conditions", "line 1: write")),
        ({"conditions": "\ncart_size gt many"}, ("targeting.conditions", "line 2: gt needs")),
        ({"namespace_id": "", "namespace_start": "0.2"}, ("namespace.id", "name the namespace")),
    ],
)
def test_unreadable_fields_are_named_with_their_fix(
    changes: dict[str, str], problem: tuple[str, str]
) -> None:
    fields = replace(forms.from_experiment(FULL), **changes)  # type: ignore[arg-type]

    _, problems = forms.to_document(fields)

    name, fix = problem
    assert name in problems, problems
    assert problems[name].startswith(fix) or fix in problems[name], problems[name]


def test_variant_numbers_are_checked_per_row() -> None:
    fields = forms.from_experiment(FULL)
    rows = list(fields.variants)
    rows[1] = replace(rows[1], weight="", shown="six", scoring={"popularity": "x"})

    _, problems = forms.to_document(replace(fields, variants=tuple(rows)))

    assert problems == {
        "variants[1].weight": "enter a number",
        "variants[1].changes.shown": "'six' is not a whole number",
        "variants[1].changes.scoring.popularity": "'x' is not a number",
    }


def test_a_decimal_comma_is_read_as_a_decimal_point() -> None:
    doc, problems = forms.to_document(replace(forms.from_experiment(FULL), coverage="0,75"))

    assert problems == {}
    assert doc["coverage"] == 0.75


def test_countries_paths_and_conditions_are_read_from_free_text() -> None:
    fields = replace(
        forms.blank(),
        countries="de, at  ch",
        path_patterns="/products/*\n, /cart",
        conditions="locale nin de-DE,fr-FR\n\ncart_size lt 3\ndevice ne mobile",
    )

    doc, problems = forms.to_document(fields)

    assert problems == {}
    assert doc["targeting"]["countries"] == ["DE", "AT", "CH"]
    assert doc["targeting"]["path_patterns"] == ["/products/*", "/cart"]
    assert doc["targeting"]["conditions"] == [
        {"attribute": "locale", "op": "nin", "value": ["de-DE", "fr-FR"]},
        {"attribute": "cart_size", "op": "lt", "value": 3.0},
        {"attribute": "device", "op": "ne", "value": "mobile"},
    ]


def test_dates_are_utc_minutes() -> None:
    fields = replace(forms.blank(), starts_at="2027-01-15T08:30")

    doc, _ = forms.to_document(fields)

    assert doc["starts_at"] == datetime(2027, 1, 15, 8, 30, tzinfo=UTC).timestamp()
    shown = forms.from_experiment(replace(FULL, starts_at=doc["starts_at"]))
    assert shown.starts_at == "2027-01-15T08:30"


def test_rows_are_added_up_to_the_limit_and_control_cannot_be_removed() -> None:
    fields = forms.blank()
    for _ in range(forms.MAX_VARIANTS + 3):
        fields = forms.with_variant_added(fields)

    assert len(fields.variants) == forms.MAX_VARIANTS
    assert forms.with_variant_removed(fields, 0) == fields
    assert forms.with_variant_removed(fields, 99) == fields
    fewer = forms.with_variant_removed(fields, 1)
    assert len(fewer.variants) == forms.MAX_VARIANTS - 1
    assert fewer.variants[0].id == "control"


def test_posted_rows_beyond_the_limit_are_ignored() -> None:
    pairs = [(f"variants[{i}].id", f"v{i}") for i in range(forms.MAX_VARIANTS + 5)]

    assert len(forms.from_form(pairs).variants) == forms.MAX_VARIANTS


@pytest.mark.parametrize(
    ("problem", "shown_at"),
    [
        ("coverage", "coverage"),
        ("variants.weight", "variants.weight"),
        ("variants[1].changes.scoring.speed", "variants[1].changes"),
        ("variants[2].changes.shown", "variants[2].changes.shown"),
        ("targeting.conditions[0]", "targeting.conditions"),
        ("status", None),
        ("body", None),
        ("variants[9].id", "variants"),
    ],
)
def test_problems_are_placed_next_to_their_field_or_its_parent(
    problem: str, shown_at: str | None
) -> None:
    assert placement(problem, error_slots(3)) == shown_at


@pytest.mark.parametrize(
    ("guardrails", "problem"),
    [("add_to_cart", "analysis.guardrails"), ("click five", "analysis.guardrails")],
)
def test_unreadable_guardrails_are_named(guardrails: str, problem: str) -> None:
    fields = replace(forms.blank(), key="g", name="G", slots=("home-hero",), guardrails=guardrails)
    _, problems = forms.to_document(fields)
    assert "e.g. 'add_to_cart 5'" in problems[problem]


def test_analysis_problems_sit_next_to_their_fields() -> None:
    slots = error_slots(2)
    assert placement("analysis.guardrails[1].max_drop", slots) == "analysis.guardrails"
    assert placement("analysis.mde", slots) == "analysis.mde"
