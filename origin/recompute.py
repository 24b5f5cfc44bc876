"""Keep segment lists and stored bundles in step with the catalog.

`Recomputer` is the I/O shell around the pure scoring and builder: it (re)computes the ranked
list of every (slot, segment) partition, rescored one product at a time on change, and rebuilds a
bundle, writing it only when its content hash changed (compare-and-set, retried on conflict).
The origin's `build` command and the invalidation consumer both use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fragments.bundle import Bundle
from fragments.keys import CONTROL_VARIANT, FragmentKey, partition_of
from fragments.slots import SlotCatalog
from origin.builder import BundleBuilder
from origin.catalog import Product, Segment
from origin.errors import OriginError
from origin.scoring import rank, score
from origin.store import PurgeRequest, Store

MAX_CAS_ATTEMPTS = 8


class RecomputeConflict(OriginError):
    """A bundle kept changing under us; the caller should retry later (retriable)."""

    retriable = True


@dataclass(frozen=True, slots=True)
class RecomputeResult:
    """What a bundle recompute did."""

    key: FragmentKey
    changed: bool
    """True when the stored content hash changed (a purge is due)."""
    bundle: Bundle


@dataclass(frozen=True, slots=True)
class Partition:
    """A (slot, segment) pair: one ranked list, several bundles (variants x locales)."""

    slot: str
    segment: Segment

    @property
    def id(self) -> str:
        return partition_of(self.slot, self.segment.id)


class Recomputer:
    """Recomputes lists and bundles against one store."""

    def __init__(
        self,
        store: Store,
        builder: BundleBuilder,
        segments: Sequence[Segment],
        variants: Sequence[str] = (CONTROL_VARIANT,),
    ) -> None:
        self.store = store
        self.builder = builder
        self.slots: SlotCatalog = builder.slots
        self.segments = {s.id: s for s in segments}
        self.variants = tuple(variants)
        self.partitions = {
            p.id: p for p in (Partition(slot, seg) for slot in self.slots.slots for seg in segments)
        }

    def keys_of(self, partition: Partition) -> list[FragmentKey]:
        return [
            FragmentKey(partition.slot, partition.segment.id, variant, locale)
            for variant in self.variants
            for locale in self.slots.locales
        ]

    def all_keys(self) -> list[FragmentKey]:
        return [k for p in self.partitions.values() for k in self.keys_of(p)]

    async def rebuild_all(self, products: Sequence[Product]) -> list[RecomputeResult]:
        """Recompute every list from `products` and every bundle from the lists."""
        for partition in self.partitions.values():
            weights = self.slots.slots[partition.slot].scoring
            ranked = rank(products, partition.segment, weights, len(products))
            await self.store.replace_list(partition.id, {p.sku: v for p, v in ranked})
        return await self.recompute_many(dict.fromkeys(self.all_keys()))

    async def rescore(self, products: Sequence[Product]) -> dict[str, set[FragmentKey]]:
        """Update each product's score in every list; per SKU, the bundles it now belongs in."""
        scores = {
            product.sku: {
                pid: score(product, p.segment, self.slots.slots[p.slot].scoring)
                for pid, p in self.partitions.items()
            }
            for product in products
        }
        ranks = await self.store.set_scores(scores)
        impacted: dict[str, set[FragmentKey]] = {}
        for sku, by_partition in ranks.items():
            keys = impacted.setdefault(sku, set())
            for pid, position in by_partition.items():
                partition = self.partitions[pid]
                if position is not None and position < self.slots.slots[partition.slot].candidates:
                    keys.update(self.keys_of(partition))
        return impacted

    async def bundles_showing(self, skus: Sequence[str]) -> dict[str, set[FragmentKey]]:
        """Per SKU, the stored bundles whose candidates include it (from the tag index)."""
        return await self.store.bundles_showing(skus, list(self.partitions))

    async def recompute(
        self, key: FragmentKey, purge: PurgeRequest | None = None
    ) -> RecomputeResult:
        """Rebuild one bundle; see `recompute_many`."""
        return (await self.recompute_many({key: purge}))[0]

    async def recompute_many(
        self, requests: Mapping[FragmentKey, PurgeRequest | None]
    ) -> list[RecomputeResult]:
        """Rebuild bundles from their lists; write each only if what shoppers see changed.

        Reads are shared across the batch (one pipeline each for stored states, lists and
        products). A changed bundle is written with compare-and-set on its stored hash, its tag
        enqueued for purging in the same call (`requests[key]`); a key that changed under us is
        recomputed again from fresh reads.
        """
        results: list[RecomputeResult] = []
        pending = list(requests)
        for _attempt in range(MAX_CAS_ATTEMPTS):
            if not pending:
                return results
            states = await self.store.stored_states(pending)
            limits = {k.partition: self.slots.slots[k.slot].candidates for k in pending}
            tops = await self.store.tops(limits)
            products = await self.store.products({sku for top in tops.values() for sku, _ in top})
            conflicts: list[FragmentKey] = []
            for key in pending:
                previous = states[key]
                ranked = [(products[s], v) for s, v in tops[key.partition] if s in products]
                bundle = self.builder.build(key, ranked, previous.version if previous else 1)
                if previous is not None:
                    if previous.content_hash == bundle.content_hash:
                        results.append(RecomputeResult(key, changed=False, bundle=bundle))
                        continue
                    bundle = replace(bundle, version=previous.version + 1)
                outcome = await self.store.put_bundle(bundle, previous, requests[key])
                if outcome.written:
                    results.append(RecomputeResult(key, changed=True, bundle=bundle))
                else:
                    conflicts.append(key)
            pending = conflicts
        if pending:
            names = ", ".join(k.cache_key for k in pending)
            raise RecomputeConflict(f"bundles changed concurrently {MAX_CAS_ATTEMPTS}x: {names}")
        return results
