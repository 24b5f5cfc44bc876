"""Learned item-to-item lists: co-views from the profile's new views (pure part).

When a batch adds product views to a visitor's profile, each *new* view pairs with the other
views of the same session within `SESSION_WINDOW_SECONDS` (both directions). Only views the
profile did not hold before count, so a redelivered event adds nothing. Scores use forward decay:
a pair seen at time t adds ``2 ** ((t - EPOCH) / HALF_LIFE)``, so older evidence weighs less
without ever rewriting stored scores; `origin.context.learned_store` keeps the top
`TOP_K` per anchor. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from origin.context.profile import Profile, View

SESSION_WINDOW_SECONDS = 30 * 60
HALF_LIFE_SECONDS = 7 * 24 * 3600
EPOCH = 1_700_000_000.0
TOP_K = 50


@dataclass(frozen=True, slots=True)
class CoView:
    anchor: str
    other: str
    weight: float


Increments = dict[str, dict[str, float]]
"""Anchor -> other SKU -> summed weight: a window's co-views, as the store applies them."""


def aggregate(coviews: Iterable[CoView]) -> Increments:
    """Sum a window's co-views per (anchor, other) pair, in their order: adding each pair's sum
    to a score gives what adding the co-views one by one gives (the property tests check it
    against Redis)."""
    out: Increments = {}
    for c in coviews:
        row = out.get(c.anchor)
        if row is None:
            out[c.anchor] = {c.other: c.weight}
        else:
            row[c.other] = row.get(c.other, 0.0) + c.weight
    return out


def weight_at(at: float) -> float:
    """The forward-decayed weight of evidence at time `at`."""
    return float(2.0 ** ((at - EPOCH) / HALF_LIFE_SECONDS))


def new_coviews(before: Profile | None, after: Profile) -> list[CoView]:
    """The co-views the views new in `after` (not in `before`) make, both directions."""
    known = {v.id for v in before.views} if before else set()
    by_session: dict[str, list[View]] = {}
    for v in after.views:
        if v.sku:
            by_session.setdefault(v.session, []).append(v)
    out: list[CoView] = []
    for views in by_session.values():
        if len(views) < 2:
            continue
        for new in views:
            if new.id in known:
                continue
            for other in views:
                if other.sku == new.sku or abs(other.at - new.at) > SESSION_WINDOW_SECONDS:
                    continue  # the same SKU (or the view itself), or outside the window
                if other.id not in known and other.id < new.id:
                    continue  # two new views: the pair is counted once, from the smaller id
                w = weight_at(max(new.at, other.at))
                out += [CoView(new.sku, other.sku, w), CoView(other.sku, new.sku, w)]
    return out
