"""Cache tags: the names a CDN purges by. The origin puts them on every bundle response, the
invalidation consumer enqueues them, the edge and the purgers send them. Nothing else builds a tag.
Stdlib only, no I/O.
"""

from __future__ import annotations

from fragments.errors import InvalidIdentifier
from fragments.ids import FragmentKey

GLOBAL_TAG = "shelfedge"
"""Carried by every bundle: purging it empties every shelfedge entry of a zone."""


def sku_tag(sku: str) -> str:
    return f"sku:{sku}"


def slot_tag(slot: str) -> str:
    return f"slot:{slot}"


def segment_tag(segment: str) -> str:
    return f"segment:{segment}"


def slot_segment_tag(slot: str, segment: str) -> str:
    return f"slotseg:{slot}/{segment}"


BUNDLE_TAG_PREFIX = "bundle:"


def bundle_tag(key: FragmentKey) -> str:
    """The tag that names exactly one bundle (all its cached representations); an anchored
    bundle's names its anchor as ``@<SKU>`` where a segment would stand."""
    return f"{BUNDLE_TAG_PREFIX}{key.slot}/{key.audience}/{key.variant}/{key.locale}"


def key_of_bundle_tag(tag: str) -> FragmentKey | None:
    """The key a `bundle_tag` names, or None for any other (or malformed) tag."""
    if not tag.startswith(BUNDLE_TAG_PREFIX):
        return None
    try:
        slot, audience, variant, locale = tag.removeprefix(BUNDLE_TAG_PREFIX).split("/")
        return FragmentKey.from_audience(slot, audience, variant, locale)
    except (ValueError, InvalidIdentifier):
        return None


def coarse_tags(key: FragmentKey) -> tuple[str, ...]:
    """Tags that always fit in a header, used when per-SKU tags would be too long.

    An anchored bundle carries its anchor's SKU tag instead of segment tags: whatever purges
    the anchor product (``sku:<anchor>``) purges the cross-sell shown on its page.
    """
    if key.anchor is not None:
        return (GLOBAL_TAG, slot_tag(key.slot), sku_tag(key.anchor), bundle_tag(key))
    return (
        GLOBAL_TAG,
        slot_tag(key.slot),
        segment_tag(key.segment),
        slot_segment_tag(key.slot, key.segment),
        bundle_tag(key),
    )


def bundle_tags(key: FragmentKey, skus: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """All tags of a bundle: its coarse tags, then one per SKU it shows (in order, no repeats)."""
    seen: dict[str, None] = dict.fromkeys(coarse_tags(key))
    for sku in skus:
        seen.setdefault(sku_tag(sku), None)
    return tuple(seen)
