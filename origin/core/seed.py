"""Load the deterministic demo catalog into Redis and build every list and bundle from it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fragments.slots import SlotCatalog
from origin.core.builder import BundleBuilder
from origin.core.demo_catalog import generate_catalog
from origin.core.recompute import Recomputer
from origin.core.store import Store


@dataclass(frozen=True, slots=True)
class SeedReport:
    products: int
    segments: int
    bundles: int
    seconds: float


async def seed_demo(
    store: Store, slots: SlotCatalog, seed: int = 42, n_skus: int = 5000
) -> SeedReport:
    """Generate, load and build; idempotent for the same seed."""
    started = time.perf_counter()
    catalog = generate_catalog(seed, n_skus)
    await store.load_catalog(catalog.products, catalog.segments)
    recomputer = Recomputer(store, BundleBuilder(slots), catalog.segments)
    results = await recomputer.rebuild_all(catalog.products)
    return SeedReport(
        products=len(catalog.products),
        segments=len(catalog.segments),
        bundles=len(results),
        seconds=time.perf_counter() - started,
    )
