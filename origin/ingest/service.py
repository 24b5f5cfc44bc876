"""Build a catalog importer over a store: the one composition the CLI and the web service share.

The importer rescores with the segments stored in Redis; a store that has none yet (a fresh
catalog fed only by imports) gets the default segments (`origin.core.demo_catalog.demo_segments`)
stored first, so bundles can be built at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from fragments.slots import SlotCatalog
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.catalog import segments_to_json
from origin.core.demo_catalog import demo_segments
from origin.core.recompute import Recomputer
from origin.core.redis_errors import bounded
from origin.core.store import Store
from origin.ingest.catalog_import import CatalogImporter


async def catalog_importer(
    store: Store,
    slots: SlotCatalog,
    purgers: Sequence[str],
    *,
    currency: str = "USD",
    builder: BundleBuilder | None = None,
    judge_workers: int | None = None,
) -> CatalogImporter:
    """An importer over `store` that builds bundles for `slots` and purges through `purgers`;
    `judge_workers` as `CatalogImporter` takes it."""
    segments = await store.segments()
    if not segments:
        segments = list(demo_segments())
        await bounded(
            store.redis.set(keys.SEGMENTS_KEY, segments_to_json(segments), nx=True),
            max(store.timeout, 5.0),
            "store default segments",
        )
        segments = await store.segments()
    recomputer = Recomputer(store, builder or BundleBuilder(slots), segments)
    return CatalogImporter(
        store, recomputer, purgers, currency=currency, judge_workers=judge_workers
    )
