"""Attribute the storefront's click / add-to-cart / purchase beacons to experiment variants.

The browser cannot read the HttpOnly visitor and sticky-assignment cookies, so it reports only
what happened (``{"events": [{"type", "slot"?, "sku"?, "value_cents"?}]}`` to ``/se/events``);
the edge adds the visitor id and, from the sticky cookie (signed for this visitor: `secret` is
the segment keys) and the current configuration, the
experiment and variant the visitor is in. With a slot, only that slot's experiments count;
without one (a checkout page), every experiment the visitor is in. Nothing is reported without
consent, without a visitor id, or for experiments the visitor is not in; any variant the
browser claims is ignored; the price the shopper saw (``price_cents``) travels when it is
well formed. Behaviour-only items (``view``, ``remove_from_cart``, ``search``) are
the clickstream's (`edge.clickstream_beacons`) and are passed over here, uncounted. The events
are `fragments.wire_events.ExperimentEvent` values, checked against that one definition's
patterns. Pure: the adapter supplies cookies, time and fresh event
ids; the body's size limit and parsing are `edge.surface`'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.context import CONSENT_COOKIE, VISITOR_ID
from edge.router import STICKY_COOKIE, parse_sticky
from fragments.clickstream import CLICK_TYPES
from fragments.experiments import EdgeExperimentConfig, Experiment
from fragments.segment_cookie import VISITOR_COOKIE
from fragments.sticky_cookie import verify_sticky
from fragments.wire_events import CONVERSION_TYPES, ID, MAX_VALUE_CENTS, SKU, ExperimentEvent

MAX_BROWSER_EVENTS = 50
_BEHAVIOUR_ONLY = frozenset(CLICK_TYPES) - frozenset(CONVERSION_TYPES)


@dataclass(slots=True)
class Attribution:
    """Events to forward to the origin, and why the others were not."""

    events: list[ExperimentEvent] = field(default_factory=list)
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
    if not VISITOR_ID.fullmatch(visitor):
        out.skip("no_visitor", len(raw))
        return out
    sticky = parse_sticky(verify_sticky(cookies.get(STICKY_COOKIE), visitor, secret))
    for item in raw:
        if isinstance(item, Mapping) and item.get("type") in _BEHAVIOUR_ONLY:
            continue
        if not isinstance(item, Mapping) or item.get("type") not in CONVERSION_TYPES:
            out.skip("malformed")
            continue
        slot = _optional(item, "slot", ID)
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
) -> ExperimentEvent:
    value = item.get("value_cents")
    valid = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_VALUE_CENTS
    shown = item.get("price_cents")
    shown_ok = (
        isinstance(shown, int) and not isinstance(shown, bool) and 0 <= shown <= MAX_VALUE_CENTS
    )
    return ExperimentEvent(
        id=event_id,
        type=item["type"],
        experiment=experiment,
        variant=variant,
        visitor=visitor,
        at=now,
        slot=slot or None,
        sku=_optional(item, "sku", SKU) or None,
        value_cents=value if item["type"] == "purchase" and valid else None,
        price_cents=shown if shown_ok else None,
    )


def _optional(item: Mapping[str, Any], name: str, rule: re.Pattern[str]) -> str | None:
    value = item.get(name)
    return value if isinstance(value, str) and rule.fullmatch(value) else None
