"""`Store.products(locations=False)`, the read every recompute makes of its candidates (one HMGET
of the document fields each, decoded through a memo): on one node and on a cluster it must
answer what the full documents say, in any number and order, with absent SKUs left out."""

from __future__ import annotations

import dataclasses

import pytest
from redis.asyncio import Redis

from origin.core.catalog import Product
from origin.core.store import Store
from tests.invalidation.support import seed_world


def without_locations(product: Product) -> Product:
    return dataclasses.replace(product, locations={})


@pytest.mark.parametrize("count", [0, 1, 300])
async def test_documents_equal_the_full_products(redis_client: Redis, count: int) -> None:
    world = await seed_world(redis_client, n_skus=600)
    store = Store(redis_client, timeout=5.0)
    skus = [p.sku for p in world.products][:count]
    missing = ["NOT-A-SKU", "SKU-99999"] if count else []
    asked = [*skus[: count // 2], *missing, *skus[count // 2 :]]
    documents = await store.products(asked, locations=False)
    full = await store.products(asked)
    assert list(documents) == list(full) == skus[: count // 2] + skus[count // 2 :]
    for sku, product in documents.items():
        assert product == without_locations(full[sku]), sku
