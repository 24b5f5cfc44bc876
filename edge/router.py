"""The experiment router: which variant of a slot a visitor sees, and why. Pure, stdlib only.

Bucketing follows GrowthBook's published algorithm so assignments are stable across CPython,
Pyodide and WASI and experiments can move to or from GrowthBook:

- ``fnv1a32`` over UTF-16 code units (JavaScript's ``charCodeAt``);
- hash v1: ``fnv1a32(value + seed) % 1000 / 1000``; v2: ``fnv1a32(str(fnv1a32(seed + value)))
  % 10000 / 10000``;
- bucket ranges: cumulative weights, each range ``[start, start + coverage * weight)``, so
  lowering coverage shrinks ranges from their top and never moves a visitor to another variant;
- namespaces: ``hash("__" + namespace id, value, 1)`` within ``[start, end)``.

Order of decisions for one experiment: not running -> QA override (a valid scoped preview token
for this experiment and variant only) -> not eligible (targeting) -> sticky assignment (same
bucket version; after targeting, so a cookie cannot widen who is in) -> namespace -> holdout ->
outside coverage -> assigned. The first experiment of the slot that takes the visitor wins.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fragments.experiments import (
    Condition,
    EdgeExperimentConfig,
    Experiment,
    Namespace,
    VariantChanges,
)
from fragments.ids import CONTROL_VARIANT
from fragments.preview_tokens import PreviewGrant, verify_preview

Reason = Literal[
    "no_experiment",
    "not_running",
    "not_eligible",
    "namespace",
    "holdout",
    "outside_coverage",
    "assigned",
    "forced",
    "sticky",
]
STICKY_COOKIE = "se_exp"
MAX_STICKY_ENTRIES = 20
OVERRIDE_PREFIX = "sx_"
PREVIEW_TOKEN_PARAM = "sx_token"


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over UTF-16 code units, as GrowthBook's JavaScript SDK computes it."""
    value = 0x811C9DC5
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        value ^= data[i] | (data[i + 1] << 8)
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def gb_hash(seed: str, value: str, version: int) -> float | None:
    """GrowthBook's hash in [0, 1); None for an unknown version."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(n: int) -> list[float]:
    return [1.0 / n] * n if n > 0 else []


def bucket_ranges(
    n: int, coverage: float, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's getBucketRanges: coverage clamped to [0, 1], bad weights -> equal."""
    coverage = min(1.0, max(0.0, coverage))
    chosen = list(weights) if weights is not None else equal_weights(n)
    if len(chosen) != n or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal_weights(n)
    ranges: list[tuple[float, float]] = []
    cumulative = 0.0
    for w in chosen:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variation(n: float, ranges: Sequence[tuple[float, float]]) -> int:
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


def in_namespace(value: str, namespace: Namespace) -> bool:
    n = gb_hash("__" + namespace.id, value, 1)
    return n is not None and namespace.start <= n < namespace.end


@dataclass(frozen=True, slots=True)
class RouteInput:
    """What routing may look at: coarse attributes and the visitor id (never a cache key)."""

    visitor_id: str
    slot: str
    now: float
    attributes: Mapping[str, str | float]
    """segment, country, device, locale, consent, cart_size, page."""
    sticky: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Experiment key -> (variant index, bucket version) from the sticky cookie."""
    overrides: Mapping[str, str] = field(default_factory=dict)
    """``?sx_<key>=<variant>`` query overrides (honoured only with a valid preview token)."""
    preview_token: str | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """The routing decision and why."""

    variant: str
    reason: Reason
    experiment: str | None = None
    variant_index: int = 0
    in_experiment: bool = False
    hash_value: float | None = None
    bucket_version: int = 0
    changes: VariantChanges = field(default_factory=VariantChanges)

    @property
    def sticky_new(self) -> bool:
        """True when the visitor's sticky cookie should record this assignment."""
        return self.in_experiment and self.reason == "assigned"


CONTROL = Assignment(CONTROL_VARIANT, "no_experiment")


def preview_grant(
    token: str | None, config: EdgeExperimentConfig, now: float
) -> PreviewGrant | None:
    """What a scoped preview token allows (`fragments.preview_tokens`), or None."""
    return verify_preview(token, config.preview_secret_hash, now)


def route(config: EdgeExperimentConfig, inp: RouteInput) -> Assignment:
    """The assignment for this visitor and slot (control with a reason when none applies)."""
    last = CONTROL
    preview = preview_grant(inp.preview_token, config, inp.now)
    for experiment in config.for_slot(inp.slot):
        decision = _route_one(experiment, inp, preview)
        if decision.in_experiment or decision.reason == "forced":
            return decision
        last = decision
    return last


def _route_one(e: Experiment, inp: RouteInput, preview: PreviewGrant | None) -> Assignment:
    def control(reason: Reason, hash_value: float | None = None) -> Assignment:
        return Assignment(CONTROL_VARIANT, reason, e.key, 0, False, hash_value, e.bucket_version)

    if not e.is_live(inp.now) or len(e.variants) < 2:
        return control("not_running")
    forced = inp.overrides.get(e.key)
    if (
        preview is not None
        and forced is not None
        and forced in e.variant_ids()
        and preview.allows(e.key, forced)
    ):
        index = e.variant_ids().index(forced)
        v = e.variants[index]
        return Assignment(v.id, "forced", e.key, index, False, None, e.bucket_version, v.changes)
    if not inp.visitor_id or not eligible(e, inp.attributes):
        return control("not_eligible")  # checked before sticky: a cookie cannot widen targeting
    sticky = inp.sticky.get(e.key)
    if sticky is not None and sticky[1] == e.bucket_version and 0 <= sticky[0] < len(e.variants):
        v = e.variants[sticky[0]]
        return Assignment(v.id, "sticky", e.key, sticky[0], True, None, e.bucket_version, v.changes)
    if e.namespace is not None and not in_namespace(inp.visitor_id, e.namespace):
        return control("namespace")
    if e.holdout > 0:
        held = gb_hash(e.seed + "__holdout", inp.visitor_id, 2)
        if held is not None and held < e.holdout:
            return control("holdout", held)
    n = gb_hash(e.seed, inp.visitor_id, e.hash_version)
    if n is None:
        return control("not_running")
    index = choose_variation(
        n, bucket_ranges(len(e.variants), e.coverage, [v.weight for v in e.variants])
    )
    if index < 0:
        return control("outside_coverage", n)
    v = e.variants[index]
    return Assignment(v.id, "assigned", e.key, index, True, n, e.bucket_version, v.changes)


def eligible(e: Experiment, attributes: Mapping[str, str | float]) -> bool:
    t = e.targeting
    checks = (
        (t.segments, "segment"),
        (t.countries, "country"),
        (t.devices, "device"),
    )
    for allowed, name in checks:
        if allowed and str(attributes.get(name, "")) not in allowed:
            return False
    if t.path_patterns:
        page = str(attributes.get("page", ""))
        if not any(fnmatch.fnmatchcase(page, pattern) for pattern in t.path_patterns):
            return False
    return all(_condition(c, attributes) for c in t.conditions)


def _condition(c: Condition, attributes: Mapping[str, str | float]) -> bool:
    actual = attributes.get(c.attribute)
    if c.op in ("in", "nin"):
        values = [str(v) for v in c.value] if isinstance(c.value, list) else [str(c.value)]
        return (str(actual) in values) == (c.op == "in")
    if c.op in ("gt", "lt"):
        try:
            left, right = float(actual if actual is not None else 0), float(str(c.value))
        except ValueError:
            return False
        return left > right if c.op == "gt" else left < right
    equal = str(actual) == str(c.value)
    return equal if c.op == "eq" else not equal


def parse_sticky(raw: str | None) -> dict[str, tuple[int, int]]:
    """``key.index.bucketversion|...`` -> {key: (index, bucket version)}; garbage ignored."""
    out: dict[str, tuple[int, int]] = {}
    if not raw or len(raw) > 1024:
        return out
    for item in raw.split("|")[:MAX_STICKY_ENTRIES]:
        key, _, rest = item.partition(".")
        index, _, version = rest.partition(".")
        # isascii first: str.isdigit() accepts digits such as '²' that int() rejects.
        numeric = index.isascii() and version.isascii() and index.isdigit() and version.isdigit()
        if key and numeric and len(key) <= 64:
            out[key] = (int(index), int(version))
    return out


def encode_sticky(entries: Mapping[str, tuple[int, int]]) -> str:
    items = sorted(entries.items())[:MAX_STICKY_ENTRIES]
    return "|".join(f"{k}.{i}.{v}" for k, (i, v) in items)
