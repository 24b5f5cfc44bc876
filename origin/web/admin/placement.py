"""Where the edit page shows each validation problem: next to its field, else in the summary.

Problem names are the API's dotted field names (``variants[1].changes.shown``). `error_slots`
lists every name the page has an error slot for; `placement` maps a problem to its slot or its
nearest parent's (``variants[1].changes.scoring.x`` -> ``variants[1].changes``). The page's
script applies the same rule in the browser. Pure, no I/O.
"""

from __future__ import annotations

import re

from fragments.experiments import SCORING_FIELDS


def error_slots(variant_count: int) -> frozenset[str]:
    """Every problem name the edit page shows next to a field (the rest go in the summary)."""
    top = {
        "key", "name", "slots", "targeting.segments", "targeting.countries",
        "targeting.devices", "targeting.path_patterns", "targeting.conditions", "coverage",
        "holdout", "namespace", "namespace.id", "namespace.start", "namespace.end",
        "hash_version", "hash_seed", "bucket_version", "starts_at", "ends_at", "variants",
        "variants.weight", "analysis.primary_metric", "analysis.guardrails",
        "analysis.correction", "analysis.minimum_visitors", "analysis.cuped", "analysis.mde",
    }  # fmt: skip
    per_variant = (
        "", ".id", ".name", ".weight", ".changes", ".changes.wrapper_template",
        ".changes.card_template", ".changes.shown", ".changes.recency_boost",
        ".changes.price_floor", *(f".changes.scoring.{n}" for n in SCORING_FIELDS),
        ".changes.labels", ".changes.labels.include", ".changes.labels.exclude",
        ".changes.labels.boost",
    )  # fmt: skip
    rows = {f"variants[{i}]{suffix}" for i in range(variant_count) for suffix in per_variant}
    return frozenset(top | rows)


def placement(name: str, slots: frozenset[str]) -> str | None:
    """Where a problem named `name` is shown: itself, else its nearest shown parent, else None
    (the page's summary). ``variants[1].changes.scoring.x`` -> ``variants[1].changes``."""
    candidate = name
    while candidate:
        if candidate in slots:
            return candidate
        trimmed = re.sub(r"(\[\d+\]|\.[^.\[\]]+)$", "", candidate)
        if trimmed == candidate:
            return None
        candidate = trimmed
    return None
