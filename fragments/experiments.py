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
) -> None:
    """Raise ExperimentInvalid naming every problem and its fix."""
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
    """Build from a JSON object; raise ExperimentInvalid naming malformed fields."""
    try:
        targeting = d.get("targeting") or {}
        ns = d.get("namespace")
        return Experiment(
            key=str(d["key"]),
            name=str(d.get("name", "")),
            status=d.get("status", "draft"),
            slots=tuple(str(s) for s in d.get("slots", ())),
            variants=tuple(
                Variant(
                    id=str(v["id"]),
                    name=str(v.get("name", v["id"])),
                    weight=float(v["weight"]),
                    changes=_changes_from_dict(v.get("changes") or {}),
                )
                for v in d.get("variants", ())
            ),
            targeting=Targeting(
                segments=tuple(targeting.get("segments", ())),
                countries=tuple(targeting.get("countries", ())),
                devices=tuple(targeting.get("devices", ())),
                path_patterns=tuple(targeting.get("path_patterns", ())),
                conditions=tuple(
                    Condition(str(c["attribute"]), str(c["op"]), c["value"])
                    for c in targeting.get("conditions", ())
                ),
            ),
            coverage=float(d.get("coverage", 1.0)),
            hash_seed=str(d.get("hash_seed", "")),
            hash_version=int(d.get("hash_version", 2)),
            bucket_version=int(d.get("bucket_version", 0)),
            namespace=None
            if not ns
            else Namespace(str(ns["id"]), float(ns["start"]), float(ns["end"])),
            holdout=float(d.get("holdout", 0.0)),
            starts_at=None if d.get("starts_at") is None else float(d["starts_at"]),
            ends_at=None if d.get("ends_at") is None else float(d["ends_at"]),
            version=int(d.get("version", 1)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExperimentInvalid({"body": f"malformed experiment: {exc!r}"}) from exc


def _changes_from_dict(d: Mapping[str, Any]) -> VariantChanges:
    scoring = d.get("scoring")
    return VariantChanges(
        wrapper_template=d.get("wrapper_template"),
        card_template=d.get("card_template"),
        scoring=None if scoring is None else {str(k): float(v) for k, v in scoring.items()},
        shown=None if d.get("shown") is None else int(d["shown"]),
        recency_boost=None if d.get("recency_boost") is None else float(d["recency_boost"]),
        price_floor=None if d.get("price_floor") is None else float(d["price_floor"]),
        origin_rendered=bool(d.get("origin_rendered", False)),
    )


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
