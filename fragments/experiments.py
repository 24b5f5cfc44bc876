"""The experiment model: what marketers configure and the edge router reads.

An experiment routes eligible shoppers of one or more slots into weighted variants. Each variant
says what it changes: the templates or the segment-list scoring the origin renders its bundles with
(the variant id is part of the bundle cache key), the edge rerank (recency boost, price floor,
number shown), or "origin-rendered" (the edge serves the origin's fragment as is).

`EdgeExperimentConfig` is the immutable, versioned document the origin publishes and the edge
fetches. Validation names the field and the fix. Stdlib only: this module is imported under
Pyodide and the WASI build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fragments.errors import FragmentsError
from fragments.keys import CONTROL_VARIANT, check_id

Status = Literal["draft", "running", "paused", "stopped"]
STATUSES: tuple[Status, ...] = ("draft", "running", "paused", "stopped")
ATTRIBUTE_OPS = ("eq", "ne", "in", "nin", "gt", "lt")
ATTRIBUTES = ("segment", "country", "device", "locale", "consent", "cart_size", "page")
SCORING_FIELDS = ("affinity", "popularity", "margin")
"""Segment-list scoring exponents a variant may override (see `fragments.slots.ScoringWeights`)."""
MAX_SCORING_EXPONENT = 10.0
PUBLISHED_STATUSES: tuple[Status, ...] = ("running", "paused", "stopped")
"""Statuses that are part of the published edge configuration (drafts never are)."""
WEIGHT_TOLERANCE = 0.001
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ExperimentInvalid(FragmentsError, ValueError):
    """An experiment that cannot be published; `problems` maps field -> what to fix."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


@dataclass(frozen=True, slots=True)
class Condition:
    """A simple attribute condition, e.g. ``cart_size gt 0``."""

    attribute: str
    op: str
    value: str | float | list[str]


@dataclass(frozen=True, slots=True)
class Targeting:
    """Who is eligible: every non-empty list must match."""

    segments: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    path_patterns: tuple[str, ...] = ()
    """fnmatch-style patterns of the storefront page path, e.g. ``/products/*``."""
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True, slots=True)
class VariantChanges:
    """What a variant changes relative to control (None keeps control's)."""

    wrapper_template: str | None = None
    card_template: str | None = None
    scoring: Mapping[str, float] | None = None
    """Segment-list scoring exponents (affinity, popularity, margin)."""
    shown: int | None = None
    recency_boost: float | None = None
    price_floor: float | None = None
    origin_rendered: bool = False

    @property
    def changes_bundle(self) -> bool:
        """True when the origin must render this variant's bundles differently from control."""
        return bool(self.wrapper_template or self.card_template or self.scoring)


@dataclass(frozen=True, slots=True)
class Variant:
    id: str
    name: str
    weight: float
    changes: VariantChanges = field(default_factory=VariantChanges)


@dataclass(frozen=True, slots=True)
class Namespace:
    """Mutual exclusion: experiments in one namespace with disjoint ranges never share a visitor."""

    id: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Experiment:
    key: str
    name: str
    status: Status
    slots: tuple[str, ...]
    variants: tuple[Variant, ...]
    targeting: Targeting = field(default_factory=Targeting)
    coverage: float = 1.0
    hash_seed: str = ""
    """Defaults to the key."""
    hash_version: int = 2
    bucket_version: int = 0
    """Raise to deliberately re-randomize sticky assignments."""
    namespace: Namespace | None = None
    holdout: float = 0.0
    """Share of eligible visitors kept on control and out of the experiment."""
    starts_at: float | None = None
    ends_at: float | None = None
    version: int = 1
    """Optimistic-concurrency version (the API's ETag / If-Match)."""

    @property
    def seed(self) -> str:
        return self.hash_seed or self.key

    def variant_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.variants)

    def is_live(self, now: float) -> bool:
        """Running and within its time window."""
        if self.status != "running":
            return False
        if self.starts_at is not None and now < self.starts_at:
            return False
        return self.ends_at is None or now < self.ends_at


@dataclass(frozen=True, slots=True)
class EdgeExperimentConfig:
    """The published, immutable experiment configuration."""

    version: int
    experiments: tuple[Experiment, ...]
    preview_secret_hash: str = ""
    """SHA-256 (hex) of the preview token that unlocks ``?sx_<key>=<variant>`` overrides."""

    def for_slot(self, slot: str) -> tuple[Experiment, ...]:
        return tuple(e for e in self.experiments if slot in e.slots)


EMPTY_CONFIG = EdgeExperimentConfig(version=0, experiments=())


# --- validation -----------------------------------------------------------------------------


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
    if not _KEY.fullmatch(experiment.key):
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
    if len(variants) < 2:
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
        if shown is not None and not 1 <= shown <= 100:
            problems[f"variants[{i}].changes.shown"] = "show between 1 and 100 products"
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
        if c.recency_boost is not None and not 0.0 <= c.recency_boost <= 10.0:
            problems[f"{where}.recency_boost"] = "use a boost between 0 and 10"
        if c.price_floor is not None and not 0.0 <= c.price_floor <= 1.0:
            problems[f"{where}.price_floor"] = "use a floor between 0 and 1"
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


# --- JSON codec -----------------------------------------------------------------------------


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
        hash_version=int(r.number(d, "hash_version", 2)),
        bucket_version=int(r.number(d, "bucket_version", 0)),
        namespace=namespace,
        holdout=r.number(d, "holdout", 0.0),
        starts_at=r.optional_number(d, "starts_at"),
        ends_at=r.optional_number(d, "ends_at"),
        version=int(r.number(d, "version", 1)),
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
        return float(value)

    def optional_number(self, d: Mapping[str, Any], name: str, where: str = "") -> float | None:
        return None if d.get(name) is None else self.number(d, name, None, where)


def _changes_from_dict(r: _Reader, d: Mapping[str, Any], where: str) -> VariantChanges:
    scoring = r.mapping(d, "scoring", where) if d.get("scoring") is not None else None
    return VariantChanges(
        wrapper_template=_optional_text(r, d, "wrapper_template", where),
        card_template=_optional_text(r, d, "card_template", where),
        scoring=None
        if scoring is None
        else {str(k): r.number(scoring, k, None, where + "scoring.") for k in scoring},
        shown=None if d.get("shown") is None else int(r.number(d, "shown", None, where)),
        recency_boost=r.optional_number(d, "recency_boost", where),
        price_floor=r.optional_number(d, "price_floor", where),
        origin_rendered=bool(d.get("origin_rendered", False)),
    )


def _optional_text(r: _Reader, d: Mapping[str, Any], name: str, where: str) -> str | None:
    return None if d.get(name) is None else r.text(d, name, where)


def config_to_json(config: EdgeExperimentConfig) -> str:
    return json.dumps(
        {
            "version": config.version,
            "experiments": [experiment_to_dict(e) for e in config.experiments],
            "preview_secret_hash": config.preview_secret_hash,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def config_from_json(text: str | bytes) -> EdgeExperimentConfig:
    doc = json.loads(text)
    return EdgeExperimentConfig(
        version=int(doc["version"]),
        experiments=tuple(experiment_from_dict(e) for e in doc["experiments"]),
        preview_secret_hash=str(doc.get("preview_secret_hash", "")),
    )
