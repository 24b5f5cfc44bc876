"""The experiment model: what marketers configure and the edge router reads.

An experiment routes eligible shoppers of one or more slots into weighted variants. Each variant
says what it changes: the templates, the segment-list scoring or the custom-label rule the origin
renders its bundles with
(the variant id is part of the bundle cache key), the edge rerank (recency boost, price floor,
number shown), or "origin-rendered" (the edge serves the origin's fragment as is).

`EdgeExperimentConfig` is the immutable, versioned document the origin publishes and the edge
fetches. Validation (`fragments.experiment_validation`) names the field and the fix; the JSON
form is `fragments.experiment_codec`. Value objects only, never I/O. Stdlib only: this module is
imported under Pyodide and the WASI build.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fragments.errors import FragmentsError
from fragments.ids import ID_PATTERN
from fragments.labels import LabelRule

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
EXPERIMENT_KEY = re.compile(ID_PATTERN)
"""What an experiment key may be."""
METRICS = ("purchase", "add_to_cart", "click", "revenue")
"""Per exposed visitor: converted (purchase, add to cart, click: 0/1) or revenue (an amount)."""
CORRECTIONS = ("holm", "bh")
"""Multiple-comparison corrections: Holm (family-wise error) or Benjamini-Hochberg (FDR)."""


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
    labels: LabelRule | None = None
    """A custom-label rule replacing the slots' own (``include`` / ``exclude`` / ``boost`` by
    custom_label_0..4, `fragments.labels`): the variant shows products with other labels."""
    shown: int | None = None
    recency_boost: float | None = None
    price_floor: float | None = None
    origin_rendered: bool = False

    @property
    def changes_bundle(self) -> bool:
        """True when the origin must render this variant's bundles differently from control."""
        return bool(
            self.wrapper_template or self.card_template or self.scoring or self.labels is not None
        )


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
class Guardrail:
    """A metric that must not fall by more than `max_drop` (relative, e.g. 0.05 for 5 %)."""

    metric: str
    max_drop: float


@dataclass(frozen=True, slots=True)
class Analysis:
    """How results judge the experiment (origin only: never part of the published edge config)."""

    primary_metric: str = "purchase"
    guardrails: tuple[Guardrail, ...] = ()
    correction: str = "holm"
    """One of `CORRECTIONS`, applied across every challenger and metric."""
    minimum_visitors: int = 500
    """Exposed visitors per variant before any verdict (the minimum-data gate)."""
    cuped: bool = True
    """Adjust with the visitors' pre-exposure activity (CUPED)."""
    mde: float = 0.05
    """Minimum detectable effect (relative) the experiment is planned for."""


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
    analysis: Analysis = field(default_factory=Analysis)

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
