"""Anchored bundles (product cross-sell, the cart's per-item bundles): built when requested.

There are as many anchored bundles as products x variants x locales, most of them never asked
for, so none is built ahead. When the edge asks the origin for one (a miss or a revalidation),
`AnchoredBundles.envelope` builds it from current state (the anchor's imported list, else its
learned list, else similar products: `origin.core.anchored`), writes it only if its content
hash changed (compare-and-set, version + 1, like every bundle) and answers the stored envelope.
The edge's max-age therefore bounds how stale an anchored bundle can be; its ``sku:`` tags let
a purge by SKU reach it too.

Hot anchors: every served partition is stamped in `keys.HOT_ANCHORS_KEY`; past `max_hot`
partitions the coldest lose their stored bundles (rebuilt if asked again), so Redis memory is
bounded by ``max_hot x variants x locales`` bundles whatever the catalog size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from fragments.ids import FragmentKey
from origin.core import keys
from origin.core.anchored import AnchoredCandidates, anchored_candidates
from origin.core.builder import BundleBuilder
from origin.core.catalog import Product
from origin.core.config_store import ConfigReader
from origin.core.list_store import ListStore
from origin.core.lists import DEFAULT_BATCH_LIST_NAME, RankedItem, list_key_id
from origin.core.redis_errors import bounded
from origin.core.redis_text import as_text
from origin.core.store import Store
from origin.core.variants import CONTROL_BUNDLES, variants_of
from origin.errors import UnknownEntity

DEFAULT_MAX_HOT = 20_000
"""Anchored partitions (slot x anchor) keeping stored bundles."""
CATALOG_SNAPSHOT_SECONDS = 30.0
"""How long the catalog read for similarity is reused (one process)."""
MAX_WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class AnchoredBuild:
    """What serving one anchored key did."""

    envelope: bytes
    changed: bool
    source: str
    """Which candidate source led: imported, learned or similar."""


class AnchoredBundles:
    """Builds, stores and serves anchored bundles for one store."""

    def __init__(
        self,
        store: Store,
        builder: BundleBuilder,
        *,
        max_hot: int = DEFAULT_MAX_HOT,
        snapshot_seconds: float = CATALOG_SNAPSHOT_SECONDS,
    ) -> None:
        self.store = store
        self.builder = builder
        self.lists = ListStore(store.redis, store.timeout)
        self.max_hot = max_hot
        self.snapshot_seconds = snapshot_seconds
        self._catalog: tuple[float, tuple[Product, ...]] | None = None
        self._configs = ConfigReader(store.redis, store.timeout)
        self._variants: tuple[int, frozenset[tuple[str, str]]] = (0, frozenset())

    async def known_variant(self, slot: str, variant: str) -> bool:
        """Whether `variant` is control or a published variant of `slot` (so a caller cannot
        make the origin store bundles under made-up variant ids)."""
        if variant == CONTROL_BUNDLES.id:
            return True
        version = await self._configs.current_version()
        if version != self._variants[0]:
            published = variants_of(await self._configs.current())
            pairs = frozenset(
                (s, v.id) for v in published for s in self.builder.slots.slots if v.applies_to(s)
            )
            self._variants = (version, pairs)
        return (slot, variant) in self._variants[1]

    async def _catalog_products(self) -> tuple[Product, ...]:
        now = time.monotonic()
        if self._catalog is None or now - self._catalog[0] > self.snapshot_seconds:
            found = await self.store.products(await self.store.all_skus(), locations=False)
            self._catalog = (now, tuple(found[sku] for sku in sorted(found)))
        return self._catalog[1]

    async def candidates(self, key: FragmentKey) -> AnchoredCandidates | None:
        """The key's candidates, or None when its anchor is not in the catalog."""
        if key.anchor is None:
            raise ValueError(f"{key.cache_key} is not an anchored key")
        slot = self.builder.slots.get(key.slot)
        if slot is None or slot.anchor is None:
            raise UnknownEntity("anchored slot", key.slot)
        anchor = await self.store.product(key.anchor)
        if anchor is None:
            return None
        name = slot.source.list_name or DEFAULT_BATCH_LIST_NAME
        imported = await self.lists.get(list_key_id("anchor", key.anchor, name))
        items = imported.items if imported else None
        learned = await self.learned(key.anchor, slot.candidates)
        catalog = await self._catalog_products()
        listed = {item.sku for item in (*(items or ()), *learned)}
        products = await self.store.products(listed, locations=False) if listed else {}
        return anchored_candidates(anchor, items, learned, products, catalog, slot.candidates)

    async def learned(self, anchor: str, limit: int) -> list[RankedItem]:
        """The anchor's learned co-view list (written by the context processor), best first."""
        rows: list[Any] = await bounded(
            self.store.redis.zrevrange(
                keys.learned_list_key(anchor), 0, limit - 1, withscores=True
            ),
            max(self.store.timeout, 2.0),
            "read learned list",
        )
        return [RankedItem(as_text(sku), float(score)) for sku, score in rows]

    async def envelope(self, key: FragmentKey) -> AnchoredBuild | None:
        """Build `key`'s bundle, store it if it changed, and return the stored envelope; None
        when the anchor is not in the catalog. Rendered with the slot's own templates (an
        experiment variant of an anchored slot changes the edge's rerank, not the cards)."""
        chosen = await self.candidates(key)
        if chosen is None:
            return None
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            previous = await self.store.stored_state(key)
            bundle = self.builder.build(key, chosen.ranked, previous.version if previous else 1)
            changed = previous is None or previous.content_hash != bundle.content_hash
            if changed:
                if previous is not None:
                    bundle = replace(bundle, version=previous.version + 1)
                outcome = await self.store.put_bundle(bundle, previous)
                if not outcome.written:
                    continue
            await self._touch(key)
            raw = await self.store.get_envelope(key)
            if raw is not None:
                return AnchoredBuild(raw, changed, chosen.source)
        raise RuntimeError(f"{key.cache_key}: stored bundle kept changing during the build")

    async def _touch(self, key: FragmentKey) -> None:
        """Stamp the partition as hot; past the cap, retire the coldest partitions."""
        redis = self.store.redis
        timeout = max(self.store.timeout, 2.0)
        now_ms = int(time.time() * 1000)
        await bounded(redis.zadd(keys.HOT_ANCHORS_KEY, {key.partition: now_ms}), timeout, "hot")
        excess = int(await bounded(redis.zcard(keys.HOT_ANCHORS_KEY), timeout, "hot")) - (
            self.max_hot
        )
        if excess <= 0:
            return
        coldest: list[Any] = await bounded(
            redis.zpopmin(keys.HOT_ANCHORS_KEY, excess), timeout, "hot"
        )
        for member, _score in coldest:
            await self.retire(as_text(member))

    async def retire(self, partition: str) -> int:
        """Delete an anchored partition's stored bundles and indexes; bundles deleted."""
        redis = self.store.redis
        timeout = max(self.store.timeout, 2.0)
        cache_keys = await bounded(
            redis.hkeys(keys.partition_hashes_key(partition)), timeout, "read partition"
        )
        bundle_keys = [keys.bundle_key(FragmentKey.from_cache_key(as_text(k))) for k in cache_keys]
        await bounded(
            redis.delete(
                *bundle_keys,
                keys.partition_hashes_key(partition),
                keys.partition_index_key(partition),
                keys.partition_bundles_key(partition),
            ),
            timeout,
            "retire anchored partition",
        )
        return len(bundle_keys)
