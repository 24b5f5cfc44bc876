"""The JSON form of experiments and of the published edge configuration.

`experiment_from_dict` reads untrusted JSON (the config API, the admin form, the edge's copy of
the published configuration) and raises `ExperimentInvalid` naming every malformed field; what is
*allowed* is `fragments.experiment_validation`'s to say. Pure, stdlib only (Pyodide, WASI).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from fragments.experiments import (
    Analysis,
    Condition,
    EdgeExperimentConfig,
    Experiment,
    ExperimentInvalid,
    Guardrail,
    Namespace,
    Targeting,
    Variant,
    VariantChanges,
)
from fragments.labels import LabelRule, LabelRuleInvalid, parse_label_rule


def experiment_to_dict(e: Experiment) -> dict[str, Any]:
    return {
        "key": e.key,
        "name": e.name,
        "status": e.status,
        "slots": list(e.slots),
        "variants": [
            {
                "id": v.id,
                "name": v.name,
                "weight": v.weight,
                "changes": _changes_to_dict(v.changes),
            }
            for v in e.variants
        ],
        "targeting": {
            "segments": list(e.targeting.segments),
            "countries": list(e.targeting.countries),
            "devices": list(e.targeting.devices),
            "path_patterns": list(e.targeting.path_patterns),
            "conditions": [
                {"attribute": c.attribute, "op": c.op, "value": c.value}
                for c in e.targeting.conditions
            ],
        },
        "coverage": e.coverage,
        "hash_seed": e.hash_seed,
        "hash_version": e.hash_version,
        "bucket_version": e.bucket_version,
        "namespace": None
        if e.namespace is None
        else {"id": e.namespace.id, "start": e.namespace.start, "end": e.namespace.end},
        "holdout": e.holdout,
        "starts_at": e.starts_at,
        "ends_at": e.ends_at,
        "version": e.version,
        "analysis": {
            "primary_metric": e.analysis.primary_metric,
            "guardrails": [
                {"metric": g.metric, "max_drop": g.max_drop} for g in e.analysis.guardrails
            ],
            "correction": e.analysis.correction,
            "minimum_visitors": e.analysis.minimum_visitors,
            "cuped": e.analysis.cuped,
            "mde": e.analysis.mde,
        },
    }


def _changes_to_dict(c: VariantChanges) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in (
        "wrapper_template", "card_template", "shown", "recency_boost", "price_floor",
    ):  # fmt: skip
        value = getattr(c, name)
        if value is not None:
            out[name] = value
    if c.scoring is not None:
        out["scoring"] = dict(c.scoring)
    if c.labels is not None:
        out["labels"] = c.labels.to_dict()
    if c.origin_rendered:
        out["origin_rendered"] = True
    return out


def experiment_from_dict(d: Mapping[str, Any]) -> Experiment:
    """Build from a JSON object; raise ExperimentInvalid naming every malformed field."""
    if not isinstance(d, Mapping):
        raise ExperimentInvalid({"body": "send a JSON object describing the experiment"})
    r = _Reader()
    targeting = r.mapping(d, "targeting")
    ns = d.get("namespace")
    namespace = None
    if ns:
        ns_map = r.mapping(d, "namespace")
        namespace = Namespace(
            r.text(ns_map, "id", "namespace."), r.number(ns_map, "start", 0.0, "namespace."),
            r.number(ns_map, "end", 1.0, "namespace."),
        )  # fmt: skip
    variants = []
    for i, raw in enumerate(r.items(d, "variants")):
        where = f"variants[{i}]."
        if not isinstance(raw, Mapping):
            r.problems[f"variants[{i}]"] = "each variant must be an object with id, weight"
            continue
        vid = r.text(raw, "id", where)
        variants.append(
            Variant(
                id=vid,
                name=r.text(raw, "name", where, default=vid),
                weight=r.number(raw, "weight", None, where),
                changes=_changes_from_dict(r, r.mapping(raw, "changes", where), where + "changes."),
            )
        )
    conditions = []
    for i, raw in enumerate(r.items(targeting, "conditions", "targeting.")):
        where = f"targeting.conditions[{i}]"
        if not isinstance(raw, Mapping) or not {"attribute", "op", "value"} <= set(raw):
            r.problems[where] = "each condition needs attribute, op and value"
            continue
        if isinstance(raw["value"], float) and not math.isfinite(raw["value"]):
            r.problems[where + ".value"] = "must be a finite number (not NaN or Infinity)"
            continue
        conditions.append(Condition(str(raw["attribute"]), str(raw["op"]), raw["value"]))
    experiment = Experiment(
        key=r.text(d, "key", required=True),
        name=r.text(d, "name"),
        status=d.get("status", "draft"),
        slots=r.strings(d, "slots"),
        variants=tuple(variants),
        targeting=Targeting(
            segments=r.strings(targeting, "segments", "targeting."),
            countries=r.strings(targeting, "countries", "targeting."),
            devices=r.strings(targeting, "devices", "targeting."),
            path_patterns=r.strings(targeting, "path_patterns", "targeting."),
            conditions=tuple(conditions),
        ),
        coverage=r.number(d, "coverage", 1.0),
        hash_seed=r.text(d, "hash_seed"),
        hash_version=r.integer(d, "hash_version", 2),
        bucket_version=r.integer(d, "bucket_version", 0),
        namespace=namespace,
        holdout=r.number(d, "holdout", 0.0),
        starts_at=r.optional_number(d, "starts_at"),
        ends_at=r.optional_number(d, "ends_at"),
        version=r.integer(d, "version", 1),
        analysis=_analysis_from_dict(r, r.mapping(d, "analysis")),
    )
    if r.problems:
        raise ExperimentInvalid(r.problems)
    return experiment


class _Reader:
    """Reads typed fields from untrusted JSON, collecting a problem per malformed field."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}

    def mapping(self, d: Mapping[str, Any], name: str, where: str = "") -> Mapping[str, Any]:
        value = d.get(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems[where + name] = "must be an object"
            return {}
        return value

    def items(self, d: Mapping[str, Any], name: str, where: str = "") -> list[Any]:
        value = d.get(name, [])
        if not isinstance(value, list):
            self.problems[where + name] = "must be a list"
            return []
        return value

    def strings(self, d: Mapping[str, Any], name: str, where: str = "") -> tuple[str, ...]:
        value = d.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems[where + name] = "must be a list of strings"
            return ()
        return tuple(value)

    def text(
        self,
        d: Mapping[str, Any],
        name: str,
        where: str = "",
        *,
        default: str = "",
        required: bool = False,
    ) -> str:
        if name not in d and required:
            self.problems[where + name] = "required"
            return default
        value = d.get(name, default)
        if not isinstance(value, str):
            self.problems[where + name] = "must be a string"
            return default
        return value

    def number(
        self, d: Mapping[str, Any], name: str, default: float | None, where: str = ""
    ) -> float:
        value = d.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems[where + name] = "required number" if value is None else "must be a number"
            return 0.0
        if not math.isfinite(value):
            self.problems[where + name] = "must be a finite number (not NaN or Infinity)"
            return 0.0
        return float(value)

    def integer(self, d: Mapping[str, Any], name: str, default: int | None, where: str = "") -> int:
        """A whole number (``3`` or ``3.0``); ``3.5``, strings and booleans are problems."""
        value = d.get(name, default)
        if isinstance(value, float) and value.is_integer():  # never inf or nan
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems[where + name] = (
                "required integer" if value is None else "must be an integer"
            )
            return 0
        return value

    def flag(self, d: Mapping[str, Any], name: str, where: str = "") -> bool:
        value = d.get(name, False)
        if not isinstance(value, bool):
            self.problems[where + name] = "must be true or false"
            return False
        return value

    def optional_number(self, d: Mapping[str, Any], name: str, where: str = "") -> float | None:
        return None if d.get(name) is None else self.number(d, name, None, where)


def _labels_from_dict(r: _Reader, d: Mapping[str, Any], where: str) -> LabelRule | None:
    """A variant's ``labels`` (``{"include": ..., "exclude": ..., "boost": [...]}``)."""
    if d.get("labels") is None:
        return None
    raw = r.mapping(d, "labels", where)
    unknown = sorted(set(raw) - {"include", "exclude", "boost"})
    if unknown:
        r.problems[f"{where}labels.{unknown[0]}"] = "unknown key; use include, exclude, boost"
        return None
    try:
        return parse_label_rule(raw.get("include"), raw.get("exclude"), raw.get("boost"))
    except LabelRuleInvalid as exc:
        r.problems[f"{where}labels.{exc.field}"] = exc.reason
        return None


def _changes_from_dict(r: _Reader, d: Mapping[str, Any], where: str) -> VariantChanges:
    scoring = r.mapping(d, "scoring", where) if d.get("scoring") is not None else None
    return VariantChanges(
        labels=_labels_from_dict(r, d, where),
        wrapper_template=_optional_text(r, d, "wrapper_template", where),
        card_template=_optional_text(r, d, "card_template", where),
        scoring=None
        if scoring is None
        else {str(k): r.number(scoring, k, None, where + "scoring.") for k in scoring},
        shown=None if d.get("shown") is None else r.integer(d, "shown", None, where),
        recency_boost=r.optional_number(d, "recency_boost", where),
        price_floor=r.optional_number(d, "price_floor", where),
        origin_rendered=r.flag(d, "origin_rendered", where),
    )


def _analysis_from_dict(r: _Reader, d: Mapping[str, Any]) -> Analysis:
    default = Analysis()
    guardrails = []
    for i, raw in enumerate(r.items(d, "guardrails", "analysis.")):
        where = f"analysis.guardrails[{i}]."
        if not isinstance(raw, Mapping):
            r.problems[f"analysis.guardrails[{i}]"] = "each guardrail is {metric, max_drop}"
            continue
        guardrails.append(
            Guardrail(
                r.text(raw, "metric", where, required=True), r.number(raw, "max_drop", None, where)
            )
        )
    cuped = d.get("cuped", default.cuped)
    if not isinstance(cuped, bool):
        r.problems["analysis.cuped"] = "must be true or false"
        cuped = default.cuped
    return Analysis(
        primary_metric=r.text(d, "primary_metric", "analysis.", default=default.primary_metric),
        guardrails=tuple(guardrails),
        correction=r.text(d, "correction", "analysis.", default=default.correction),
        minimum_visitors=int(
            r.number(d, "minimum_visitors", default.minimum_visitors, "analysis.")
        ),
        cuped=cuped,
        mde=r.number(d, "mde", default.mde, "analysis."),
    )


def _optional_text(r: _Reader, d: Mapping[str, Any], name: str, where: str) -> str | None:
    return None if d.get(name) is None else r.text(d, name, where)


def config_to_json(config: EdgeExperimentConfig) -> str:
    return json.dumps(
        {
            "version": config.version,
            "experiments": [_published(e) for e in config.experiments],
            "preview_secret_hash": config.preview_secret_hash,
        },
        separators=(",", ":"),
        sort_keys=True,
        allow_nan=False,  # never publish what is not JSON
    )


def _published(e: Experiment) -> dict[str, Any]:
    """What the edge gets: everything but the analysis settings (results are the origin's)."""
    doc = experiment_to_dict(e)
    del doc["analysis"]
    return doc


def config_from_json(text: str | bytes) -> EdgeExperimentConfig:
    """The published configuration from its JSON; ExperimentInvalid names what is malformed
    (ValueError when the text is not JSON at all)."""
    try:
        doc = json.loads(text)
    except RecursionError as exc:
        raise ExperimentInvalid({"config": "JSON nested too deeply"}) from exc
    if not isinstance(doc, Mapping):
        raise ExperimentInvalid({"config": "must be a JSON object with version and experiments"})
    r = _Reader()
    version = r.integer(doc, "version", None)
    experiments = r.items(doc, "experiments")
    if r.problems:
        raise ExperimentInvalid({f"config.{k}": v for k, v in r.problems.items()})
    return EdgeExperimentConfig(
        version=version,
        experiments=tuple(experiment_from_dict(e) for e in experiments),
        preview_secret_hash=str(doc.get("preview_secret_hash", "")),
    )
