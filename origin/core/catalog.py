"""Catalog value objects: products and shopper segments, and their Redis hash encoding.

A product document lives in one Redis HASH (`origin.core.keys.product_key`). Stock is kept per
location (``loc:<id>`` fields) and as a total; stock and price carry separate per-SKU versions
because they arrive on different topics with no ordering between them. Never performs I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from fragments.cards import CardView, badges, stock_state

LOCATION_FIELD_PREFIX = "loc:"
LABEL_COUNT = 5
"""Merchant Center's custom_label_0..4: free labels a retailer sets for rules and targeting."""
LABEL_FIELDS = tuple(f"label{n}" for n in range(LABEL_COUNT))
CONTENT_FIELDS = (
    "link", "image_link", "category_path", "availability", "item_group_id", "gtin", "mpn",
    *LABEL_FIELDS, "content_version",
)  # fmt: skip
"""Optional content a product feed or a catalog.v1 event carries (empty when never given)."""
DOCUMENT_FIELDS = (
    "sku", "title", "brand", "category", "price_cents", "compare_at_cents", "currency", "promo",
    "stock", "popularity", "margin", "stock_version", "price_version", "link", "image_link",
    *LABEL_FIELDS,
)  # fmt: skip
"""What recomputes read of a product document: what scores (custom labels included) and cards
use. Per-location stock and the other content fields (description, GTIN...) are left at their
defaults in a product decoded from these."""


DEFAULT_CATEGORY = "uncategorized"
_SLUG_DROP = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def category_id(path: str) -> str:
    """The category id (`fragments.ids.ID_PATTERN`) of a category path: the slug of its last
    level ("Home > Kitchen & Dining" -> ``kitchen-and-dining``), `DEFAULT_CATEGORY` if none."""
    name = path.rpartition(">")[2].lower().replace("&", "and")
    return _SLUG_DROP.sub("-", name).strip("-")[:64].rstrip("-") or DEFAULT_CATEGORY


@dataclass(frozen=True, slots=True)
class Product:
    """One SKU's catalog state."""

    sku: str
    title: str
    brand: str
    category: str
    price_cents: int
    compare_at_cents: int | None
    currency: str
    promo: str | None
    stock: int
    """Units available over all locations."""
    popularity: float
    """Normalised demand signal in (0, 1]."""
    margin: float
    """Gross margin share in (0, 1]."""
    stock_version: int = 0
    """Highest inventory event version applied."""
    price_version: int = 0
    """Highest price event version applied."""
    locations: Mapping[str, int] = field(default_factory=dict, hash=False)
    """Units per location (left out of the hash, so a product can key a cache; equality still
    compares it)."""
    link: str = ""
    """The product page (absolute http(s) URL, or a site path); empty: ``/products/<sku>``."""
    image_link: str = ""
    """The main image (absolute http(s) URL, or a site path); empty: the category's image."""
    description: str = ""
    """Plain text (feeds' HTML is reduced to text on import); not read by recomputes."""
    category_path: str = ""
    """The retailer's category path ("Home > Kitchen > Cookware"), `category` is its slug."""
    availability: str = ""
    """The feed's availability (in_stock, out_of_stock, preorder, backorder) when it set one."""
    item_group_id: str = ""
    gtin: str = ""
    mpn: str = ""
    labels: tuple[str, ...] = ("",) * LABEL_COUNT
    """custom_label_0..4, in order (slot rules and experiment targeting may match them)."""
    content_version: int = 0
    """Highest catalog.v1 event version applied (0: content from feeds or the seed only)."""

    def card(self) -> CardView:
        """What a shopper sees of this product."""
        state = stock_state(self.stock)
        return CardView(
            sku=self.sku,
            title=self.title,
            brand=self.brand,
            category=self.category,
            price_cents=self.price_cents,
            compare_at_cents=self.compare_at_cents,
            currency=self.currency,
            promo=self.promo,
            stock_state=state,
            badges=badges(self.price_cents, self.compare_at_cents, self.promo, state),
            url=self.link or f"/products/{self.sku}",
            image_url=self.image_link or f"/static/img/{self.category}.svg",
        )

    def to_hash(self) -> dict[str, str]:
        """Encode as Redis HASH fields."""
        fields = {
            "sku": self.sku,
            "title": self.title,
            "brand": self.brand,
            "category": self.category,
            "price_cents": str(self.price_cents),
            "compare_at_cents": "" if self.compare_at_cents is None else str(self.compare_at_cents),
            "currency": self.currency,
            "promo": self.promo or "",
            "stock": str(self.stock),
            "popularity": repr(self.popularity),
            "margin": repr(self.margin),
            "stock_version": str(self.stock_version),
            "price_version": str(self.price_version),
            "link": self.link,
            "image_link": self.image_link,
            "description": self.description,
            "category_path": self.category_path,
            "availability": self.availability,
            "item_group_id": self.item_group_id,
            "gtin": self.gtin,
            "mpn": self.mpn,
            "content_version": str(self.content_version),
        }
        fields.update(zip(LABEL_FIELDS, self.labels, strict=True))
        for location, units in self.locations.items():
            fields[LOCATION_FIELD_PREFIX + location] = str(units)
        return fields

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> Product:
        """Decode what `to_hash` (or the apply scripts) wrote."""
        compare_at = fields.get("compare_at_cents", "")
        return cls(
            sku=fields["sku"],
            title=fields["title"],
            brand=fields.get("brand", ""),
            category=fields["category"],
            price_cents=int(fields["price_cents"]),
            compare_at_cents=int(compare_at) if compare_at else None,
            currency=fields["currency"],
            promo=fields.get("promo") or None,
            stock=int(fields["stock"]),
            popularity=float(fields["popularity"]),
            margin=float(fields["margin"]),
            stock_version=int(fields.get("stock_version") or "0"),
            price_version=int(fields.get("price_version") or "0"),
            link=fields.get("link", ""),
            image_link=fields.get("image_link", ""),
            description=fields.get("description", ""),
            category_path=fields.get("category_path", ""),
            availability=fields.get("availability", ""),
            item_group_id=fields.get("item_group_id", ""),
            gtin=fields.get("gtin", ""),
            mpn=fields.get("mpn", ""),
            labels=tuple(fields.get(name, "") for name in LABEL_FIELDS),
            content_version=int(fields.get("content_version") or "0"),
            locations={
                k.removeprefix(LOCATION_FIELD_PREFIX): int(v)
                for k, v in fields.items()
                if k.startswith(LOCATION_FIELD_PREFIX)
            },
        )


@dataclass(frozen=True, slots=True)
class Segment:
    """A coarse shopper segment with its tastes."""

    id: str
    name: str
    category_affinity: Mapping[str, float]
    """Category -> affinity weight (1.0 neutral); unlisted categories get `default_affinity`."""
    price_band: tuple[int, int]
    """Preferred price range in cents (inclusive)."""
    default_affinity: float = 0.5


def segments_to_json(segments: list[Segment]) -> str:
    return json.dumps(
        [
            {
                "id": s.id,
                "name": s.name,
                "category_affinity": dict(s.category_affinity),
                "price_band": list(s.price_band),
                "default_affinity": s.default_affinity,
            }
            for s in segments
        ],
        sort_keys=True,
    )


def segments_from_json(text: str | bytes) -> list[Segment]:
    return [
        Segment(
            id=d["id"],
            name=d["name"],
            category_affinity=d["category_affinity"],
            price_band=(d["price_band"][0], d["price_band"][1]),
            default_affinity=d["default_affinity"],
        )
        for d in json.loads(text)
    ]
