"""Attribute the storefront's click / add-to-cart / purchase beacons to experiment variants.

The browser cannot read the HttpOnly visitor and sticky-assignment cookies, so it reports only
what happened (``{"events": [{"type", "slot"?, "sku"?, "value_cents"?}]}`` to ``/se/events``);
the edge adds the visitor id and, from the sticky cookie (signed for this visitor: `secret` is
the segment keys) and the current configuration, the
experiment and variant the visitor is in. With a slot, only that slot's experiments count;
without one (a checkout page), every experiment the visitor is in. Nothing is reported without
consent, without a visitor id, or for experiments the visitor is not in; any variant the
browser claims is ignored. Pure: the adapter supplies cookies, time and fresh event ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.context import CONSENT_COOKIE, VISITOR_COOKIE
from edge.router import STICKY_COOKIE, parse_sticky
from fragments.experiments import EdgeExperimentConfig, Experiment
from fragments.sticky_cookie import verify_sticky

MAX_BROWSER_EVENTS = 50
MAX_BEACON_BODY = 16 * 1024
"""Largest beacon body an edge accepts (bytes)."""
CONVERSION_TYPES = ("click", "add_to_cart", "purchase")
_VISITOR_ID = re.compile(r"[0-9a-f]{32}")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(slots=True)
class Attribution:
    """Events to forward to the origin, and why the others were not."""

    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def attribute(
    body: Any,
    config: EdgeExperimentConfig,
    cookies: Mapping[str, str],
    now: float,
    new_id: Callable[[], str],
    secret: str,
) -> Attribution:
    """Origin events for the browser's beacon body (malformed items are skipped, counted)."""
    out = Attribution()
    raw = body.get("events") if isinstance(body, Mapping) else None
    if not isinstance(raw, list) or not raw:
        out.skip("malformed")
        return out
    if len(raw) > MAX_BROWSER_EVENTS:
        out.skip("too_many", len(raw) - MAX_BROWSER_EVENTS)
        raw = raw[:MAX_BROWSER_EVENTS]
    visitor = cookies.get(VISITOR_COOKIE, "")
    if cookies.get(CONSENT_COOKIE) != "1":
        out.skip("no_consent", len(raw))
        return out
    if not _VISITOR_ID.fullmatch(visitor):
        out.skip("no_visitor", len(raw))
        return out
    sticky = parse_sticky(verify_sticky(cookies.get(STICKY_COOKIE), visitor, secret))
    for item in raw:
        if not isinstance(item, Mapping) or item.get("type") not in CONVERSION_TYPES:
            out.skip("malformed")
            continue
        slot = _optional(item, "slot", _ID)
        candidates = config.for_slot(slot) if slot else config.experiments
        found = False
        for experiment in candidates:
            variant = _sticky_variant(experiment, sticky)
            if variant is None:
                continue
            found = True
            out.events.append(_event(item, experiment.key, variant, visitor, slot, now, new_id()))
        if not found:
            out.skip("not_in_experiment")
    return out


def _sticky_variant(experiment: Experiment, sticky: Mapping[str, tuple[int, int]]) -> str | None:
    entry = sticky.get(experiment.key)
    if entry is None or experiment.status != "running":
        return None
    index, bucket_version = entry
    if bucket_version != experiment.bucket_version or not 0 <= index < len(experiment.variants):
        return None
    return experiment.variants[index].id


def _event(
    item: Mapping[str, Any],
    experiment: str,
    variant: str,
    visitor: str,
    slot: str | None,
    now: float,
    event_id: str,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": event_id, "type": item["type"], "experiment": experiment, "variant": variant,
        "visitor": visitor, "at": now,
    }  # fmt: skip
    if slot:
        event["slot"] = slot
    sku = _optional(item, "sku", _SKU)
    if sku:
        event["sku"] = sku
    value = item.get("value_cents")
    valid = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10**10
    if item["type"] == "purchase" and valid:
        event["value_cents"] = value
    return event


def _optional(item: Mapping[str, Any], name: str, rule: re.Pattern[str]) -> str | None:
    value = item.get(name)
    return value if isinstance(value, str) and rule.fullmatch(value) else None
