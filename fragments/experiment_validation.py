"""Experiment validation: every problem of an experiment, each named with its fix.

`validate` raises `ExperimentInvalid` with a field -> fix map (the admin UI shows each next to its
field, the API returns them as problem details). Pure, stdlib only: imported under Pyodide and
the WASI build with the rest of `fragments`.
"""

from __future__ import annotations

from collections.abc import Sequence

from fragments.errors import FragmentsError
from fragments.experiments import (
    ATTRIBUTE_OPS,
    ATTRIBUTES,
    CORRECTIONS,
    EXPERIMENT_KEY,
    MAX_SCORING_EXPONENT,
    METRICS,
    SCORING_FIELDS,
    STATUSES,
    WEIGHT_TOLERANCE,
    Experiment,
    ExperimentInvalid,
)
from fragments.ids import CONTROL_VARIANT, check_id

MIN_VARIANTS = 2
"""An experiment compares control with at least one challenger."""
SHOWN_RANGE = (1, 100)
"""How many products a variant may show (inclusive)."""
RECENCY_BOOST_MAX = 10.0
"""A variant's recency boost lies in 0..this (inclusive)."""
MINIMUM_VISITORS_RANGE = (1, 10_000_000)
"""An experiment's minimum exposed visitors per variant lies in this range (inclusive)."""
MDE_MAX = 5.0
"""An experiment's minimum detectable effect lies in (0, this]."""
PRICE_FLOOR_MAX = 1.0
"""A variant's price floor is a share of the price range, 0..this (inclusive)."""


def validate(
    experiment: Experiment,
    *,
    known_slots: Sequence[str],
    known_segments: Sequence[str],
    others: Sequence[Experiment] = (),
    known_templates: Sequence[str] | None = None,
) -> None:
    """Raise ExperimentInvalid naming every problem and its fix.

    `others` are the other stored experiments (namespace overlaps, variant ids shared on a
    slot); `known_templates`, when given, are the template names a variant may choose.
    """
    problems: dict[str, str] = {}
    if not EXPERIMENT_KEY.fullmatch(experiment.key):
        problems["key"] = "use 1-64 chars of a-z, 0-9, '-', '_' (starting with a letter or digit)"
    if not experiment.name.strip():
        problems["name"] = "give the experiment a name"
    if experiment.status not in STATUSES:
        problems["status"] = f"use one of {', '.join(STATUSES)}"
    if not experiment.slots:
        problems["slots"] = "choose at least one slot"
    for slot in experiment.slots:
        if slot not in known_slots:
            problems["slots"] = f"unknown slot {slot!r}; choose from {', '.join(known_slots)}"
    for segment in experiment.targeting.segments:
        if segment not in known_segments:
            problems["targeting.segments"] = (
                f"unknown segment {segment!r}; choose from {', '.join(known_segments)}"
            )
    _validate_variants(experiment, problems)
    _validate_changes(experiment, known_templates, problems)
    _validate_shared_variant_ids(experiment, others, problems)
    if not 0.0 <= experiment.coverage <= 1.0:
        problems["coverage"] = "use a share between 0 and 1"
    if not 0.0 <= experiment.holdout < 1.0:
        problems["holdout"] = "use a share between 0 and 1 (below 1)"
    if experiment.hash_version not in (1, 2):
        problems["hash_version"] = "use 1 or 2 (GrowthBook hash versions)"
    if (
        experiment.starts_at is not None
        and experiment.ends_at is not None
        and experiment.ends_at <= experiment.starts_at
    ):
        problems["ends_at"] = "the end must be after the start; move the end later"
    _validate_namespace(experiment, others, problems)
    _validate_analysis(experiment, problems)
    for i, condition in enumerate(experiment.targeting.conditions):
        if condition.attribute not in ATTRIBUTES or condition.op not in ATTRIBUTE_OPS:
            problems[f"targeting.conditions[{i}]"] = (
                f"attribute must be one of {', '.join(ATTRIBUTES)} and op one of "
                f"{', '.join(ATTRIBUTE_OPS)}"
            )
    if problems:
        raise ExperimentInvalid(problems)


def _validate_variants(experiment: Experiment, problems: dict[str, str]) -> None:
    variants = experiment.variants
    if len(variants) < MIN_VARIANTS:
        problems["variants"] = "add at least two variants (control and one challenger)"
        return
    if variants[0].id != CONTROL_VARIANT:
        problems["variants[0].id"] = f"the first variant must be {CONTROL_VARIANT!r}"
    ids = [v.id for v in variants]
    if len(set(ids)) != len(ids):
        problems["variants"] = "variant ids must be unique"
    for i, v in enumerate(variants):
        try:
            check_id("variant", v.id)
        except FragmentsError:
            problems[f"variants[{i}].id"] = "use 1-64 chars of a-z, 0-9, '-', '_'"
        if v.weight < 0:
            problems[f"variants[{i}].weight"] = "weights cannot be negative"
        shown = v.changes.shown
        if shown is not None and not SHOWN_RANGE[0] <= shown <= SHOWN_RANGE[1]:
            problems[f"variants[{i}].changes.shown"] = (
                f"show between {SHOWN_RANGE[0]} and {SHOWN_RANGE[1]} products"
            )
    total = sum(v.weight for v in variants)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        problems["variants.weight"] = (
            f"weights sum to {total:.3f}; make them sum to 1 (e.g. "
            f"{', '.join(f'{1 / len(variants):.3f}' for _ in variants)})"
        )


def _validate_changes(
    experiment: Experiment, known_templates: Sequence[str] | None, problems: dict[str, str]
) -> None:
    for i, v in enumerate(experiment.variants):
        c = v.changes
        where = f"variants[{i}].changes"
        for name in ("wrapper_template", "card_template"):
            template = getattr(c, name)
            if known_templates is not None and template not in (None, *known_templates):
                problems[f"{where}.{name}"] = (
                    f"unknown template {template!r}; choose from {', '.join(known_templates)}"
                )
        for name, value in (c.scoring or {}).items():
            if name not in SCORING_FIELDS:
                problems[f"{where}.scoring.{name}"] = (
                    f"unknown scoring weight; use some of {', '.join(SCORING_FIELDS)}"
                )
            elif not 0.0 <= value <= MAX_SCORING_EXPONENT:
                problems[f"{where}.scoring.{name}"] = (
                    f"use an exponent between 0 and {MAX_SCORING_EXPONENT:g}"
                )
        if c.recency_boost is not None and not 0.0 <= c.recency_boost <= RECENCY_BOOST_MAX:
            problems[f"{where}.recency_boost"] = f"use a boost between 0 and {RECENCY_BOOST_MAX:g}"
        if c.price_floor is not None and not 0.0 <= c.price_floor <= PRICE_FLOOR_MAX:
            problems[f"{where}.price_floor"] = f"use a floor between 0 and {PRICE_FLOOR_MAX:g}"
        if i == 0 and (
            c.changes_bundle
            or c.shown is not None
            or c.recency_boost is not None
            or c.price_floor is not None
            or c.origin_rendered
        ):
            problems[f"{where}"] = "control changes nothing; move the changes to a challenger"


def _validate_shared_variant_ids(
    experiment: Experiment, others: Sequence[Experiment], problems: dict[str, str]
) -> None:
    """Bundles are keyed by variant id: two published experiments on one slot need distinct ids."""
    for i, v in enumerate(experiment.variants):
        if v.id == CONTROL_VARIANT:
            continue
        for other in others:
            if other.key == experiment.key or other.status not in ("running", "paused"):
                continue
            shared = sorted(set(other.slots) & set(experiment.slots))
            if shared and v.id in other.variant_ids():
                problems[f"variants[{i}].id"] = (
                    f"variant id {v.id!r} is already used by experiment {other.key!r} on slot "
                    f"{shared[0]!r} (bundles are keyed by variant id); pick another id, e.g. "
                    f"'{experiment.key[:40]}-{v.id[:20]}'"
                )
                break


def _validate_namespace(
    experiment: Experiment, others: Sequence[Experiment], problems: dict[str, str]
) -> None:
    ns = experiment.namespace
    if ns is None:
        return
    if not 0.0 <= ns.start < ns.end <= 1.0:
        problems["namespace"] = "use a range 0 <= start < end <= 1"
        return
    for other in others:
        o = other.namespace
        if other.key == experiment.key or o is None or o.id != ns.id:
            continue
        if ns.start < o.end and o.start < ns.end:
            problems["namespace"] = (
                f"range {ns.start}-{ns.end} overlaps experiment {other.key!r} "
                f"({o.start}-{o.end}) in namespace {ns.id!r}; pick a disjoint range"
            )


def _validate_analysis(experiment: Experiment, problems: dict[str, str]) -> None:
    a = experiment.analysis
    if a.primary_metric not in METRICS:
        problems["analysis.primary_metric"] = f"use one of {', '.join(METRICS)}"
    seen: set[str] = set()
    for i, g in enumerate(a.guardrails):
        where = f"analysis.guardrails[{i}]"
        if g.metric not in METRICS:
            problems[f"{where}.metric"] = f"use one of {', '.join(METRICS)}"
        elif g.metric == a.primary_metric:
            problems[f"{where}.metric"] = (
                f"{g.metric!r} is the primary metric; a guardrail watches another metric"
            )
        elif g.metric in seen:
            problems[f"{where}.metric"] = f"{g.metric!r} has a guardrail already; keep one"
        seen.add(g.metric)
        if not 0.0 < g.max_drop < 1.0:
            problems[f"{where}.max_drop"] = (
                "use the largest tolerated relative drop between 0 and 1 (e.g. 0.05 for 5 %)"
            )
    if a.correction not in CORRECTIONS:
        problems["analysis.correction"] = (
            f"use one of {', '.join(CORRECTIONS)} (Holm or Benjamini-Hochberg)"
        )
    low, high = MINIMUM_VISITORS_RANGE
    if not low <= a.minimum_visitors <= high:
        problems["analysis.minimum_visitors"] = (
            f"use a number of visitors per variant from {low:,} to {high:,}"
        )
    if not 0.0 < a.mde <= MDE_MAX:
        problems["analysis.mde"] = (
            f"use a relative minimum detectable effect above 0 and at most {MDE_MAX:g} "
            "(e.g. 0.05 for 5 %)"
        )
