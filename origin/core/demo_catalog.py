"""A deterministic synthetic retail catalog for demos, tests and benchmarks.

Same seed, same catalog: ~20 categories, 40 brands, prices with occasional compare-at prices and
promotions, stock over three locations, a long-tailed popularity, margins, and seven shopper
segments (including the default ``everyone``) with category and price affinities.
Pure: never performs I/O.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

from origin.core.catalog import Product, Segment
from origin.core.segments_config import DEMO_SEGMENTS_FILE, segments_toml

CATEGORIES: tuple[str, ...] = (
    "apparel", "footwear", "accessories", "outdoor", "kitchen", "home-decor", "bedding",
    "electronics", "audio", "gaming", "toys", "books", "beauty", "grocery", "pets", "garden",
    "sports", "fitness", "baby", "office",
)  # fmt: skip
_PRICE_RANGES: dict[str, tuple[int, int]] = {
    "electronics": (4_900, 149_900), "audio": (1_900, 59_900), "gaming": (1_900, 69_900),
    "footwear": (2_900, 24_900), "outdoor": (1_500, 49_900), "kitchen": (900, 39_900),
}  # fmt: skip
_DEFAULT_PRICE_RANGE = (500, 15_000)
_ADJECTIVES = (
    "Classic", "Urban", "Trail", "Cozy", "Pro", "Everyday", "Compact", "Deluxe", "Eco", "Nordic",
    "Studio", "Vintage", "Active", "Smart", "Soft", "Rugged",
)  # fmt: skip
_NOUNS: dict[str, tuple[str, ...]] = {
    "apparel": ("Tee", "Hoodie", "Jacket", "Shirt"), "footwear": ("Sneaker", "Boot", "Sandal"),
    "accessories": ("Cap", "Belt", "Scarf", "Wallet"), "outdoor": ("Tent", "Backpack", "Lantern"),
    "kitchen": ("Skillet", "Knife Set", "Kettle"), "home-decor": ("Lamp", "Vase", "Rug"),
    "bedding": ("Duvet", "Pillow", "Sheet Set"), "electronics": ("Tablet", "Monitor", "Router"),
    "audio": ("Headphones", "Speaker", "Earbuds"), "gaming": ("Controller", "Headset", "Chair"),
    "toys": ("Puzzle", "Robot Kit", "Plush"), "books": ("Cookbook", "Novel", "Atlas"),
    "beauty": ("Serum", "Palette", "Cleanser"), "grocery": ("Coffee", "Olive Oil", "Tea"),
    "pets": ("Dog Bed", "Cat Tree", "Leash"), "garden": ("Planter", "Hose", "Pruner"),
    "sports": ("Ball", "Racket", "Helmet"), "fitness": ("Yoga Mat", "Dumbbells", "Band Set"),
    "baby": ("Stroller", "Onesie", "Bottle Set"), "office": ("Desk Lamp", "Notebook", "Chair"),
}  # fmt: skip
LOCATIONS: tuple[str, ...] = ("warehouse-east", "warehouse-west", "store-001")
PROMOS: tuple[str, ...] = ("2 for 1", "Free shipping", "Bundle & save", "Members -10%")
DEFAULT_SEGMENT = "everyone"


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    """A generated catalog."""

    seed: int
    products: tuple[Product, ...]
    segments: tuple[Segment, ...]
    brands: tuple[str, ...]


def generate_catalog(seed: int = 42, n_skus: int = 5000) -> DemoCatalog:
    """Generate the catalog for `seed` (deterministic across runs and platforms)."""
    rng = random.Random(seed)
    brands = tuple(f"{rng.choice(_ADJECTIVES)}{suffix}" for suffix in _brand_suffixes())
    products = tuple(_product(rng, i, brands) for i in range(n_skus))
    return DemoCatalog(seed=seed, products=products, segments=demo_segments(), brands=brands)


def _brand_suffixes() -> list[str]:
    return [
        "works", "craft", "labs", "co", "home", "gear", "mode", "ware", "line", "nest",
        "peak", "field", "studio", "supply", "goods", "house", "form", "kind", "loop", "port",
        "forge", "grove", "harbor", "lane", "mill", "north", "oak", "pine", "ridge", "stone",
        "tide", "vale", "wood", "yard", "bay", "cove", "dale", "fern", "glen", "hill",
    ]  # fmt: skip


def _product(rng: random.Random, index: int, brands: tuple[str, ...]) -> Product:
    category = CATEGORIES[index % len(CATEGORIES)] if index < 40 else rng.choice(CATEGORIES)
    low, high = _PRICE_RANGES.get(category, _DEFAULT_PRICE_RANGE)
    price = int(rng.uniform(low, high) / 100) * 100 + rng.choice((0, 49, 95, 99))
    on_sale = rng.random() < 0.12
    compare_at = int(price * rng.uniform(1.15, 1.6) / 100) * 100 + 99 if on_sale else None
    promo = rng.choice(PROMOS) if rng.random() < 0.05 else None
    locations = {loc: max(0, int(rng.gauss(30, 25))) for loc in LOCATIONS}
    if rng.random() < 0.04:
        locations = dict.fromkeys(LOCATIONS, 0)
    title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])}"
    sku = f"SKU-{index:05d}"
    return Product(
        sku=sku,
        title=title,
        brand=rng.choice(brands),
        category=category,
        price_cents=price,
        compare_at_cents=compare_at,
        currency="USD",
        promo=promo,
        stock=sum(locations.values()),
        popularity=round(min(1.0, 0.02 + rng.paretovariate(1.6) / 12), 6),
        margin=round(rng.uniform(0.08, 0.65), 6),
        stock_version=0,
        price_version=0,
        locations=locations,
        link=f"/products/{sku}",
        image_link=f"/static/img/{category}.svg",
    )


DEMO_SEGMENTS_HEADER = """The demo shopper segments, written by python -m origin.core.demo_catalog.
Format: docs/ingest.md ("Segments"). `shelfedge seed` reads this file unless
SHELFEDGE_SEGMENTS_FILE names another."""


def write_demo_segments(path: Path) -> None:
    """Write the demo segments as a segments file (the format `shelfedge seed` reads)."""
    path.write_text(segments_toml(demo_segments(), DEMO_SEGMENTS_HEADER), encoding="utf-8")


def demo_segments() -> tuple[Segment, ...]:
    """Seven segments: the default plus six with distinct tastes."""
    return (
        Segment(DEFAULT_SEGMENT, "Everyone", {}, (0, 10_000_000), default_affinity=1.0),
        Segment(
            "bargain-hunters", "Bargain hunters",
            {"grocery": 1.4, "home-decor": 1.2, "apparel": 1.2, "kitchen": 1.1}, (0, 3_000),
        ),
        Segment(
            "tech-enthusiasts", "Tech enthusiasts",
            {"electronics": 2.0, "audio": 1.8, "gaming": 1.7, "office": 1.1}, (2_000, 200_000),
        ),
        Segment(
            "outdoor-adventurers", "Outdoor adventurers",
            {"outdoor": 2.0, "footwear": 1.5, "sports": 1.5, "fitness": 1.2}, (1_500, 60_000),
        ),
        Segment(
            "home-makers", "Home makers",
            {"kitchen": 1.8, "home-decor": 1.8, "bedding": 1.6, "garden": 1.4}, (1_000, 40_000),
        ),
        Segment(
            "young-families", "Young families",
            {"baby": 2.0, "toys": 1.8, "books": 1.2, "pets": 1.1}, (500, 30_000),
        ),
        Segment(
            "style-seekers", "Style seekers",
            {"apparel": 1.9, "footwear": 1.6, "accessories": 1.7, "beauty": 1.6}, (2_000, 40_000),
        ),
    )  # fmt: skip


if __name__ == "__main__":
    write_demo_segments(Path(sys.argv[1]) if len(sys.argv) > 1 else DEMO_SEGMENTS_FILE)
