"""Load the deterministic demo catalog into Redis and build every list and bundle from it.

The segments come from a segments file (`origin.core.segments_config`): the one given, else the
demo's own ``demo_segments.toml`` (what the demo generator writes).

It also adds the freshness canary's reserved product and segment (`origin.core.canary`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from fragments.slots import SlotCatalog
from origin.core.builder import BundleBuilder
from origin.core.canary import CANARY_SEGMENT_ID, CANARY_SKU, canary_product, canary_segment
from origin.core.catalog import Segment
from origin.core.demo_catalog import generate_catalog
from origin.core.recompute import Recomputer
from origin.core.segments_config import DEMO_SEGMENTS_FILE, load_segments_file
from origin.core.store import Store


@dataclass(frozen=True, slots=True)
class SeedReport:
    products: int
    segments: int
    bundles: int
    seconds: float


async def seed_demo(
    store: Store,
    slots: SlotCatalog,
    seed: int = 42,
    n_skus: int = 5000,
    segments: Sequence[Segment] | None = None,
) -> SeedReport:
    """Generate, load and build; idempotent for the same seed and segments (None: the demo
    segments file)."""
    started = time.perf_counter()
    catalog = generate_catalog(seed, n_skus)
    chosen = list(segments) if segments is not None else load_segments_file(DEMO_SEGMENTS_FILE)
    await store.load_catalog(catalog.products, chosen)
    recomputer = Recomputer(store, BundleBuilder(slots), chosen)
    results = await recomputer.rebuild_all(catalog.products)
    return SeedReport(
        products=len(catalog.products),
        segments=len(chosen),
        bundles=len(results),
        seconds=time.perf_counter() - started,
    )


async def seed_canary(store: Store, slots: SlotCatalog) -> int:
    """Add the canary product and segment to a seeded store and build the canary's bundles.

    Idempotent: an existing canary product keeps its current price and versions (only a
    missing one is created). Returns the number of bundles built. A running invalidation
    consumer reads the segments at start-up: seed before starting it.
    """
    segments = [s for s in await store.segments() if s.id != CANARY_SEGMENT_ID]
    product = await store.product(CANARY_SKU)
    if product is None:
        product = canary_product()
        await store.load_catalog([product], [*segments, canary_segment()])
    else:
        await store.load_catalog([], [*segments, canary_segment()])
    recomputer = Recomputer(store, BundleBuilder(slots), [canary_segment()])
    return len(await recomputer.rebuild_all([product]))
