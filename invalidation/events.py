"""Inventory, price, catalog content and list events: the one definition of each topic's shape,
and its parsing.

The event types below are the schema: their field types and constraints validate every record
(msgspec, in C) and generate the published JSON Schemas (``invalidation/schemas/*.json``,
written by ``python -m invalidation.schema_files``; a test keeps them in step).

Anything that cannot be applied raises `BadEvent` with a reason that names the problem and the
field; the consumer dead-letters it. Unknown fields are ignored (the evolution rule: new optional
fields are fine). Pure: never performs I/O.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from fragments import topics
from fragments.ids import ID_PATTERN, SKU_PATTERN, anchored
from invalidation.errors import BadEvent
from origin.core.lists import MAX_LIST_ITEMS, ImportedList, check_target, list_key_id, ranked_items
from origin.errors import ListInvalid

MAX_EVENT_BYTES = 16 * 1024
MAX_VERSION = 2**53 - 1
"""Versions are compared as doubles in Redis: above 2**53 - 1 two versions can compare equal."""
MAX_CENTS = 100_000_000_000

EventId = Annotated[
    str,
    Meta(min_length=1, max_length=128, description="Unique id; redeliveries carry the same id."),
]
Sku = Annotated[str, Meta(pattern=anchored(SKU_PATTERN))]
Location = Annotated[str, Meta(pattern=anchored(ID_PATTERN))]

_PATTERN_MEMO_CAP = 200_000
"""At most this many distinct valid values are remembered per checked field (then forgotten)."""


class _MemoPattern:
    """A field pattern checked once per distinct value, after decoding.

    msgspec checks `Meta(pattern=...)` with Python's `re` on every record, three quarters of an
    inventory event's decoding time; a stream names the same few thousand SKUs and locations
    over and over, so a top-level event's SKU, location and currency are checked here (the
    event's `__post_init__`), remembering the values that matched, and published with the same
    pattern in the JSON Schema (`extra_json_schema`). A mismatch is the error msgspec gives.
    """

    __slots__ = ("_ok", "_regex", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = anchored(pattern)
        self._regex = re.compile(self.pattern)
        self._ok: set[str] = set()

    def check(self, value: str, field: str) -> None:
        ok = self._ok
        if value in ok:
            return
        if self._regex.search(value) is None:
            raise ValueError(f"Expected `str` matching regex {self.pattern!r} - at `$.{field}`")
        if len(ok) >= _PATTERN_MEMO_CAP:
            ok.clear()
        ok.add(value)


_SKU = _MemoPattern(SKU_PATTERN)
_LOCATION = _MemoPattern(ID_PATTERN)
_CURRENCY = _MemoPattern("[A-Z]{3}")
CheckedSku = Annotated[str, Meta(extra_json_schema={"pattern": _SKU.pattern})]
"""A SKU whose pattern the event's `__post_init__` checks (`_MemoPattern`)."""
CheckedLocation = Annotated[str, Meta(extra_json_schema={"pattern": _LOCATION.pattern})]
Cents = Annotated[int, Meta(ge=0, le=MAX_CENTS)]
Version = Annotated[int, Meta(ge=1, le=MAX_VERSION)]
OccurredAt = Annotated[
    datetime, Meta(tz=True, description="RFC 3339 time the change happened at the source.")
]


class InventoryEvent(Struct, frozen=True):
    """Units available of one SKU at one location. Kafka key: the SKU."""

    event_id: EventId
    sku: CheckedSku
    location: CheckedLocation
    available: Annotated[int, Meta(ge=0, le=1_000_000_000, description="Units available.")]
    version: Annotated[
        Version,
        Meta(
            description="Per-SKU sequence; a version not above the one applied for this SKU and "
            "location is stale. At most 2^53 - 1: versions are compared as doubles in Redis."
        ),
    ]
    occurred_at: OccurredAt

    def __post_init__(self) -> None:
        _SKU.check(self.sku, "sku")
        _LOCATION.check(self.location, "location")


class PriceEvent(Struct, frozen=True):
    """The selling price of one SKU. Kafka key: the SKU. Amounts in minor units (cents)."""

    event_id: EventId
    sku: CheckedSku
    price_cents: Annotated[Cents, Meta(description="Selling price in minor units.")] = (
        msgspec.field(name="price")
    )
    currency: Annotated[
        str, Meta(extra_json_schema={"pattern": _CURRENCY.pattern}, description="ISO 4217 code.")
    ]
    version: Annotated[
        Version,
        Meta(
            description="Per-SKU price sequence. At most 2^53 - 1: versions are compared as "
            "doubles in Redis."
        ),
    ]
    occurred_at: OccurredAt
    compare_at_cents: (
        Annotated[Cents, Meta(description="Reference price shown struck through.")] | None
    ) = msgspec.field(default=None, name="compare_at")
    promo: Annotated[str, Meta(max_length=64, description="Promotion text.")] | None = None

    def __post_init__(self) -> None:
        _SKU.check(self.sku, "sku")
        _CURRENCY.check(self.currency, "currency")
        if self.promo == "":
            msgspec.structs.force_setattr(self, "promo", None)  # no promo, one spelling


MAX_LABEL = 100
LABELS = 5
Url = Annotated[
    str,
    Meta(
        max_length=2000,
        pattern=r"^[hH][tT][tT][pP][sS]?://[^/\s<>\"'`][^\s<>\"'`]*$",
        description="Absolute http(s) URL; spaces, quotes and angle brackets percent-encoded.",
    ),
]


class CatalogEvent(Struct, frozen=True):
    """Content of one SKU: an upsert of the fields it carries, or a deletion. Kafka key: the SKU.

    An upsert changes only the fields present (an empty string clears an optional one) of a
    product already in the catalog (products are created by feed imports, which carry prices
    and availability). A deletion removes the product from every list and bundle; its document
    stays as a tombstone, so a stale upsert delivered later is refused by its version.
    """

    event_id: EventId
    sku: CheckedSku
    version: Annotated[
        Version,
        Meta(
            description="Per-SKU content sequence (its own, apart from stock and price). At "
            "most 2^53 - 1: versions are compared as doubles in Redis."
        ),
    ]
    occurred_at: OccurredAt
    op: Annotated[Literal["upsert", "delete"], Meta(description="upsert (default) or delete.")] = (
        "upsert"
    )
    title: Annotated[str, Meta(min_length=1, max_length=150, description="Plain text.")] | None = (
        None
    )
    link: Url | None = None
    image_link: Url | None = None
    category: (
        Annotated[
            str,
            Meta(max_length=750, description='Category path, "Home > Kitchen > Cookware".'),
        ]
        | None
    ) = None
    brand: Annotated[str, Meta(max_length=70)] | None = None
    labels: (
        Annotated[
            list[Annotated[str, Meta(max_length=MAX_LABEL)]],
            Meta(max_length=LABELS, description="custom_label_0..4, in order."),
        ]
        | None
    ) = None
    description: Annotated[str, Meta(max_length=5000, description="Plain text.")] | None = None

    def __post_init__(self) -> None:
        _SKU.check(self.sku, "sku")


class ListItem(Struct, frozen=True):
    """One SKU of a list; scores, when given, for every item and non-increasing."""

    sku: Sku
    score: Annotated[float, Meta(ge=0)] | None = None


class ListEvent(Struct, frozen=True):
    """A whole imported recommendation list, replacing the stored one when its version is
    higher. Kafka key: the list id ``<kind>/<target>/<name>``."""

    event_id: EventId
    kind: Annotated[
        Literal["segment", "anchor"],
        Meta(description="segment: the list of a segment; anchor: an item-to-item list."),
    ]
    target: Annotated[
        str, Meta(min_length=1, max_length=64, description="The segment id or anchor SKU.")
    ]
    name: Annotated[str, Meta(pattern=anchored(ID_PATTERN), description="The list's name.")]
    version: Annotated[
        Version,
        Meta(description="Per-list sequence; a version not above the stored one is stale."),
    ]
    occurred_at: OccurredAt
    items: Annotated[
        list[ListItem], Meta(max_length=MAX_LIST_ITEMS, description="Ranked SKUs, best first.")
    ]

    def __post_init__(self) -> None:
        try:
            check_target(self.kind, self.target)
            self.imported()
        except ListInvalid as exc:
            raise ValueError(str(exc)) from exc

    @property
    def list_id(self) -> str:
        return list_key_id(self.kind, self.target, self.name)

    def imported(self) -> ImportedList:
        """The list this event carries (validated: no duplicates, non-increasing scores)."""
        raw = [{"sku": i.sku} if i.score is None else {"sku": i.sku, "score": i.score}
               for i in self.items]  # fmt: skip
        items = ranked_items(raw, None)
        return ImportedList(self.kind, self.target, self.name, self.version, items)


Event = InventoryEvent | PriceEvent | CatalogEvent
"""The events that change one SKU's catalog state (applied per SKU bucket)."""
SourceEvent = InventoryEvent | PriceEvent | CatalogEvent | ListEvent
"""Every event the consumer reads: SKU events and whole lists."""

EVENT_TYPES: dict[str, type[SourceEvent]] = {
    topics.INVENTORY.name: InventoryEvent,
    topics.PRICE.name: PriceEvent,
    topics.LISTS.name: ListEvent,
    topics.CATALOG.name: CatalogEvent,
}
"""The event type of each source topic (its schema)."""

_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    topic: msgspec.json.Decoder(kind) for topic, kind in EVENT_TYPES.items()
}
_ENCODER = msgspec.json.Encoder()


def parse_event(topic: str, value: bytes | None) -> SourceEvent:
    """Validate and type one record value from `topic`."""
    decoder = _DECODERS.get(topic)
    if decoder is None:
        raise BadEvent(f"unknown schema: no schema for topic {topic!r}")
    if value is None:
        raise BadEvent("empty record value (tombstone)")
    if len(value) > MAX_EVENT_BYTES:
        raise BadEvent(f"oversized event: {len(value)} bytes > {MAX_EVENT_BYTES}")
    try:
        event: SourceEvent = decoder.decode(value)
    except msgspec.ValidationError as exc:
        raise BadEvent(f"{topic} schema violation: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadEvent(f"not JSON: {exc}") from exc
    return event


def encode_event(event: SourceEvent) -> bytes:
    """The wire JSON of an event (producers, tests, the demo generator)."""
    return _ENCODER.encode(event)


def topic_of(event: SourceEvent) -> str:
    if isinstance(event, ListEvent):
        return topics.LISTS.name
    if isinstance(event, InventoryEvent):
        return topics.INVENTORY.name
    return topics.PRICE.name if isinstance(event, PriceEvent) else topics.CATALOG.name
