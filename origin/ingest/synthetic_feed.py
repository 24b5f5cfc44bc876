"""A deterministic synthetic Merchant Center feed for demos, tests and benchmarks.

Same seed, same feed: items over the demo catalog's categories (their product_type names slug
to the demo categories, so the demo segments' affinities apply), with HTML in some
descriptions, sale prices, every availability spelling, and custom labels. Rendered as TSV,
JSON Lines or RSS 2.0 text, lazily: a feed of any size is generated line by line. Pure: never
performs I/O.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection, Iterator
from xml.sax.saxutils import escape

from origin.core.demo_catalog import CATEGORIES

TSV_COLUMNS = (
    "id", "title", "description", "link", "image_link", "price", "sale_price", "availability",
    "brand", "product_type", "google_product_category", "item_group_id", "gtin", "mpn",
    "custom_label_0", "custom_label_1",
)  # fmt: skip
_AVAILABILITY = ("in_stock", "in_stock", "in_stock", "in stock", "out_of_stock", "preorder")
_BRANDS = ("Acme", "Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware")


def item_id(index: int) -> str:
    return f"FEED-{index:06d}"


def synthetic_items(
    count: int, seed: int = 7, *, repriced: Collection[int] = (), start: int = 0
) -> Iterator[dict[str, str]]:
    """`count` items (field -> text); the items whose index is in `repriced` cost 1.00 more."""
    for index in range(start, start + count):
        rng = random.Random(seed * 1_000_003 + index)
        category = CATEGORIES[index % len(CATEGORIES)]
        name = category.replace("-", " ").title()
        cents = rng.randrange(500, 40_000) + (100 if index in repriced else 0)
        sale = rng.random() < 0.1
        sku = item_id(index)
        description = f"A <b>{name.lower()}</b> item &amp; more.<br>Item {index}."
        yield {
            "id": sku,
            "title": f"{rng.choice(_BRANDS)} {name} {index}",
            "description": description if index % 3 == 0 else f"Plain {name.lower()} {index}",
            "link": f"https://shop.example/products/{sku}",
            "image_link": f"https://cdn.shop.example/img/{sku}.jpg",
            "price": f"{cents // 100}.{cents % 100:02d} USD",
            "sale_price": f"{(cents * 8 // 10) // 100}.{(cents * 8 // 10) % 100:02d} USD"
            if sale
            else "",
            "availability": _AVAILABILITY[index % len(_AVAILABILITY)],
            "brand": rng.choice(_BRANDS),
            "product_type": f"Shop > {name}",
            "google_product_category": "Home & Garden",
            "item_group_id": f"G-{index // 4}",
            "gtin": "",
            "mpn": f"MPN{index}",
            "custom_label_0": "clearance" if index % 17 == 0 else "",
            "custom_label_1": "summer" if index % 2 else "winter",
        }


def tsv_lines(items: Iterator[dict[str, str]]) -> Iterator[str]:
    """The TSV feed of `items`, header first, one ``\\n``-terminated line each."""
    yield "\t".join(TSV_COLUMNS) + "\n"
    for item in items:
        yield "\t".join(item.get(c, "") for c in TSV_COLUMNS) + "\n"


def jsonl_lines(items: Iterator[dict[str, str]]) -> Iterator[str]:
    for item in items:
        yield json.dumps({k: v for k, v in item.items() if v}) + "\n"


def rss_chunks(items: Iterator[dict[str, str]]) -> Iterator[str]:
    """An RSS 2.0 feed with ``g:`` fields (title, link and description as RSS elements)."""
    yield (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>'
        "<title>Synthetic shop</title><link>https://shop.example</link>\n"
    )
    for item in items:
        parts = ["<item>"]
        for key, value in item.items():
            if not value:
                continue
            tag = key if key in ("title", "link", "description") else f"g:{key}"
            parts.append(f"<{tag}>{escape(value)}</{tag}>")
        parts.append("</item>\n")
        yield "".join(parts)
    yield "</channel></rss>\n"
