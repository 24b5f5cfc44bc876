"""What the edge needs to know besides the request: slots' safe defaults, locales, the default
segment, the segment cookie secret and the published experiments. Built once per isolate.

`EdgeConfig.from_slots` builds it from the slot catalog (the Worker and the local edge);
`parse_config` reads its JSON form (the WASI entry's ``config.json`` and decision requests, the
golden vector documents)::

    {"fallbacks": {slot: safe-default HTML}, "locales": [...], "segment_secret": "...",
     "default_segment": "everyone", "experiments": <published experiment config, optional>,
     "compose_budgets_ms": {slot: milliseconds, optional}}
     "anchors": {slot: "product" | "cart"} (optional: the anchored slots),
     "segment_refresh_after_s": seconds (optional, `edge.segment_refresh`)}

Pure: standard library and `fragments` only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.errors import BadEdgeInput
from edge.json_shape import json_object, json_string
from edge.segment_refresh import DEFAULT_REFRESH_AFTER_S, refresh_after_seconds
from fragments.errors import FragmentsError
from fragments.experiment_codec import config_from_json
from fragments.experiments import EMPTY_CONFIG, EdgeExperimentConfig
from fragments.ids import DEFAULT_LOCALE
from fragments.slots import (
    ANCHOR_KINDS,
    DEFAULT_COMPOSE_BUDGET_MS,
    MAX_COMPOSE_BUDGET_MS,
    SlotCatalog,
)

DEFAULT_SEGMENT = "everyone"


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    """Immutable edge configuration."""

    fallbacks: Mapping[str, str]
    """Slot id -> safe default HTML (empty string = empty slot); the known slots."""
    locales: tuple[str, ...]
    segment_secret: str
    default_segment: str = DEFAULT_SEGMENT
    default_locale: str = DEFAULT_LOCALE
    origin_timeout: float = 1.5
    """Seconds the adapter waits for the origin before treating the fetch as failed."""
    experiments: EdgeExperimentConfig = EMPTY_CONFIG
    """The published experiment configuration (refreshed by the adapter)."""
    anchors: Mapping[str, str] = field(default_factory=dict)
    """Slot id -> "product" or "cart" for anchored slots (`edge.anchors`); others per segment."""
    consent_required: bool = False
    """Consent policy ``required``: no visitor id or sticky cookie is set before the shopper
    consented (``se_consent=1``); ``implied`` (False) sets them on the first response."""
    debug_headers: bool = False
    """Send ``X-Shelfedge-Experiment`` (experiment and routing reason) on every slot; off, it
    is sent only for a forced (preview) assignment."""
    compose_budgets_ms: Mapping[str, int] = field(default_factory=dict)
    """Slot id -> milliseconds a composed page waits for it (`fragments.slots`); others get
    `DEFAULT_COMPOSE_BUDGET_MS`."""
    segment_refresh_after_s: float = DEFAULT_REFRESH_AFTER_S
    """Age (seconds) after which a consenting shopper's segment cookie is refreshed from the
    origin in the background (`edge.segment_refresh`); validated on construction."""

    def __post_init__(self) -> None:
        refresh_after_seconds(self.segment_refresh_after_s)  # ValueError names the setting

    def compose_budget(self, slot: str) -> float:
        """Seconds a page being composed waits for ``slot`` before its fallback goes there."""
        return self.compose_budgets_ms.get(slot, DEFAULT_COMPOSE_BUDGET_MS) / 1000.0

    @classmethod
    def from_slots(cls, slots: SlotCatalog, segment_secret: str) -> EdgeConfig:
        return cls(
            anchors={s.id: s.anchor for s in slots.slots.values() if s.anchor is not None},
            fallbacks={s.id: s.fallback_html for s in slots.slots.values()},
            locales=slots.locales,
            segment_secret=segment_secret,
            default_locale=slots.locales[0],
            compose_budgets_ms={s.id: s.compose_budget_ms for s in slots.slots.values()},
        )

    def pick_locale(self, requested: str | None, accept_language: str | None) -> str:
        """An explicit supported locale, else the first supported Accept-Language match."""
        if requested in self.locales:
            return requested
        for part in (accept_language or "")[:256].split(","):
            tag = part.split(";")[0].strip()
            for locale in self.locales:
                if tag == locale or (tag and locale.split("-")[0] == tag):
                    return locale
        return self.default_locale


def parse_config(raw: Mapping[str, Any]) -> EdgeConfig:
    """The edge config of its parsed JSON form; raises BadEdgeInput naming the field."""
    fallbacks = json_object(raw.get("fallbacks"), "config.fallbacks")
    if not all(isinstance(v, str) for v in fallbacks.values()):
        raise BadEdgeInput("config.fallbacks: every value must be a string of HTML")
    locales = raw.get("locales")
    if not isinstance(locales, list) or not locales or not all(isinstance(x, str) for x in locales):
        raise BadEdgeInput("config.locales must be a non-empty array of strings")
    experiments = EMPTY_CONFIG
    if raw.get("experiments") is not None:
        try:
            experiments = config_from_json(json.dumps(raw["experiments"]))
        except (FragmentsError, KeyError, TypeError, ValueError) as exc:
            raise BadEdgeInput(f"config.experiments: {exc}") from exc
    budgets = json_object(raw.get("compose_budgets_ms", {}), "config.compose_budgets_ms")
    for slot, ms in budgets.items():
        if isinstance(ms, bool) or not isinstance(ms, int) or not 1 <= ms <= MAX_COMPOSE_BUDGET_MS:
            raise BadEdgeInput(
                f"config.compose_budgets_ms.{slot}: expected milliseconds in "
                f"1..{MAX_COMPOSE_BUDGET_MS}, got {ms!r}"
            )
    anchors = json_object(raw.get("anchors", {}), "config.anchors")
    if not all(v in ANCHOR_KINDS for v in anchors.values()):
        raise BadEdgeInput(f"config.anchors: every value must be one of {', '.join(ANCHOR_KINDS)}")
    try:
        refresh_after = refresh_after_seconds(raw.get("segment_refresh_after_s"))
    except ValueError as exc:
        raise BadEdgeInput(f"config.segment_refresh_after_s: {exc}") from exc
    return EdgeConfig(
        segment_refresh_after_s=refresh_after,
        anchors={str(k): str(v) for k, v in anchors.items()},
        fallbacks=dict(fallbacks),
        locales=tuple(locales),
        segment_secret=json_string(raw, "segment_secret", "config"),
        default_segment=json_string(raw, "default_segment", "config"),
        default_locale=locales[0],
        experiments=experiments,
        compose_budgets_ms=dict(budgets),
    )
