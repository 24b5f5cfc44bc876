"""The demo catalog is deterministic and shaped as documented."""

from __future__ import annotations

from origin.core.catalog import Product
from origin.core.demo_catalog import CATEGORIES, DEFAULT_SEGMENT, LOCATIONS, generate_catalog


def test_same_seed_same_catalog() -> None:
    assert generate_catalog(42, 5000) == generate_catalog(42, 5000)


def test_other_seed_other_catalog() -> None:
    assert generate_catalog(42, 200).products != generate_catalog(43, 200).products


def test_a_smaller_catalog_is_a_prefix_of_a_larger_one() -> None:
    assert generate_catalog(42, 5000).products[:300] == generate_catalog(42, 300).products


def test_shape_of_the_default_catalog() -> None:
    catalog = generate_catalog(42, 5000)
    products = catalog.products

    assert len(products) == 5000
    assert len({p.sku for p in products}) == 5000
    assert len(CATEGORIES) == 20
    assert {p.category for p in products} == set(CATEGORIES)
    assert len(catalog.segments) == 7
    assert catalog.segments[0].id == DEFAULT_SEGMENT
    assert len({s.id for s in catalog.segments}) == 7
    assert len(set(catalog.brands)) >= 30
    for p in products:
        assert p.price_cents > 0
        assert 0 < p.popularity <= 1.0
        assert 0 < p.margin <= 1.0
        assert set(p.locations) == set(LOCATIONS)
        assert p.stock == sum(p.locations.values()) >= 0
        assert p.compare_at_cents is None or p.compare_at_cents > p.price_cents
    assert any(p.stock == 0 for p in products)
    assert any(p.promo for p in products)
    assert any(p.compare_at_cents for p in products)


def test_products_survive_the_redis_hash_encoding() -> None:
    for p in generate_catalog(42, 200).products:
        assert Product.from_hash(p.to_hash()) == p
