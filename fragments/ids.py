"""The id grammar of shelfedge: slot, segment, variant, experiment and location ids, SKUs, locales,
and the key of one shared bundle.

A bundle is keyed by (slot, segment, variant, locale), or, for an anchored slot (a product page's
cross-sell, a cart's upsell), by (slot, anchor SKU, variant, locale): the anchor is the product
the bundle's candidates relate to, never anything about a visitor.

This is the one place that says what an id looks like. Validators (`check_*`), the JSON Schemas of
the wire events and the OpenAPI document all use the patterns below; nothing else writes one. It
imports only the standard library and never performs I/O (it runs under Pyodide and WASI).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fragments.errors import InvalidIdentifier

ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,63}"
"""Slot, segment, variant, experiment, location and category ids: 1-64 of a-z, 0-9, - and _."""
SKU_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
"""A SKU: 1-64 chars of A-Z, a-z, 0-9, -, _ and ., starting with a letter or digit."""
LOCALE_PATTERN = r"[a-z]{2,3}(-[A-Z]{2})?"
VISITOR_ID_PATTERN = r"[0-9a-f]{32}"
"""The visitor id the edge mints for its ``se_vid`` cookie: 32 lower-case hex digits."""
VISITOR_PATTERN = r"[A-Za-z0-9_-]{1,64}"
"""A pseudonymous visitor id as events carry it (the edge's, or a storefront's own)."""
"""A BCP 47 language(-REGION) tag such as ``en-US``."""

_ID = re.compile(ID_PATTERN)
_SKU = re.compile(SKU_PATTERN)
_LOCALE = re.compile(LOCALE_PATTERN)


def anchored(pattern: str) -> str:
    """The pattern as a whole-string ``pattern`` for JSON Schema / OpenAPI and msgspec alike.

    ``^(?:...)(?!\\n)$``: msgspec validates with Python's ``re.search``, where ``$`` also
    matches before a final newline (``^SKU$`` accepts ``"SKU\\n"``); the lookahead refuses that
    newline. ECMA-262 (JSON Schema's regex dialect) reads the same pattern the same way, ``$``
    there matching only at the very end, so one pattern serves the published schemas and the
    validation.
    """
    return f"^(?:{pattern})(?!\\n)$"


def is_id(value: str) -> bool:
    """Whether ``value`` is a valid id (`ID_PATTERN`), as a test instead of an exception."""
    return _ID.fullmatch(value) is not None


def is_sku(value: str) -> bool:
    """Whether ``value`` is a valid SKU (`SKU_PATTERN`)."""
    return _SKU.fullmatch(value) is not None


CONTROL_VARIANT = "control"
DEFAULT_LOCALE = "en-US"
ANCHORED_SEGMENT = "anchored"
"""The segment field of an anchored key: anchored bundles are shared by every segment (the edge
reranks them with the shopper's context)."""
ANCHOR_MARK = "@"
"""Marks the anchor SKU where a segment id would stand in cache keys, partitions and tags."""


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid slot/segment/variant id, else raise InvalidIdentifier."""
    if not _ID.fullmatch(value):
        raise InvalidIdentifier(kind, value, "expected 1-64 chars of a-z, 0-9, '-', '_'")
    return value


def check_sku(value: str) -> str:
    """Return ``value`` if it is a valid SKU, else raise InvalidIdentifier."""
    if not _SKU.fullmatch(value):
        raise InvalidIdentifier("sku", value, "expected 1-64 chars of A-Z, a-z, 0-9, '-', '_', '.'")
    return value


def check_locale(value: str) -> str:
    """Return ``value`` if it is a BCP 47 language(-REGION) tag such as en-US."""
    if not _LOCALE.fullmatch(value):
        raise InvalidIdentifier("locale", value, "expected a language tag such as 'en-US'")
    return value


@dataclass(frozen=True, slots=True)
class FragmentKey:
    """Identifies one shared, cacheable bundle. Never carries anything about a visitor."""

    slot: str
    """Slot id from the slot config, e.g. ``home-hero``."""
    segment: str
    """Coarse shopper segment id, e.g. ``bargain-hunters``."""
    variant: str = CONTROL_VARIANT
    """Experiment variant id; ``control`` when no experiment applies."""
    locale: str = DEFAULT_LOCALE
    """Language-region tag used for rendering prices and text."""
    anchor: str | None = None
    """The anchor SKU of an anchored slot's bundle (then `segment` is `ANCHORED_SEGMENT`)."""

    def __post_init__(self) -> None:
        check_id("slot", self.slot)
        check_id("segment", self.segment)
        check_id("variant", self.variant)
        check_locale(self.locale)
        if self.anchor is not None:
            check_sku(self.anchor)
            if self.segment != ANCHORED_SEGMENT:
                raise InvalidIdentifier(
                    "segment", self.segment, f"an anchored key's segment is {ANCHORED_SEGMENT!r}"
                )

    @classmethod
    def anchored(
        cls, slot: str, anchor: str, variant: str = CONTROL_VARIANT, locale: str = DEFAULT_LOCALE
    ) -> FragmentKey:
        """The key of an anchored slot's bundle for the product `anchor`."""
        return cls(slot, ANCHORED_SEGMENT, variant, locale, anchor)

    @property
    def audience(self) -> str:
        """What the bundle is for: the segment id, or ``@<anchor SKU>`` for an anchored bundle."""
        return self.segment if self.anchor is None else ANCHOR_MARK + self.anchor

    @property
    def cache_key(self) -> str:
        """The edge cache key: a path-like string, shared by all visitors of this key."""
        return f"bundle/{self.slot}/{self.audience}/{self.variant}/{self.locale}"

    @property
    def partition(self) -> str:
        """The (slot, segment) or (slot, @anchor) partition that owns this bundle in Redis."""
        return partition_of(self.slot, self.audience)

    def _query(self) -> str:
        who = f"segment={self.segment}" if self.anchor is None else f"anchor={self.anchor}"
        return f"{who}&variant={self.variant}&locale={self.locale}"

    def bundle_path(self) -> str:
        """Origin URL path (with query) that serves this bundle."""
        return f"/v1/bundles/{self.slot}?{self._query()}"

    def fragment_path(self) -> str:
        """Origin URL path (with query) that serves this bundle fully rendered."""
        return f"/v1/fragments/{self.slot}?{self._query()}"

    @classmethod
    def from_audience(cls, slot: str, audience: str, variant: str, locale: str) -> FragmentKey:
        """The key whose `audience` is `audience` (a segment id or ``@<anchor SKU>``)."""
        if audience.startswith(ANCHOR_MARK):
            return cls.anchored(slot, audience[len(ANCHOR_MARK) :], variant, locale)
        return cls(slot, audience, variant, locale)

    @classmethod
    def from_cache_key(cls, cache_key: str) -> FragmentKey:
        """Parse what `cache_key` produced."""
        parts = cache_key.split("/")
        if len(parts) != 5 or parts[0] != "bundle":
            raise InvalidIdentifier(
                "cache key", cache_key, "expected bundle/slot/segment-or-@anchor/variant/locale"
            )
        return cls.from_audience(parts[1], parts[2], parts[3], parts[4])


def partition_of(slot: str, segment: str) -> str:
    """The partition id of a (slot, segment) pair."""
    return f"{slot}/{segment}"
