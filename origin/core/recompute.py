"""Keep segment lists and stored bundles in step with the catalog and the running experiments.

`Recomputer` is the I/O shell around the pure scoring and builder: it (re)computes the ranked
list of every (slot, segment) partition, rescoring the products that changed in every list at
once (`origin.core.scoring.ListScorer`), and rebuilds a bundle, writing it only when its content
hash changed (compare-and-set, retried on conflict). A ranked list keeps its best
`origin.core.store.list_depth` products above a floor (`Store.merge_scores`); one that runs short
is ranked again from the whole catalog. New products can be ranked in bulk
(`top_scores` / `merge_top_scores`, what a feed import does). A slot's custom-label rule (or a
variant's, which overrides it) is part of its lists' scores.
The origin's `build` command, the experiment publisher and the invalidation consumer use it.

Experiment variants (`origin.core.variants`): each variant of a running experiment has
bundles of its own on its slots. A variant that changes the scoring weights or the label rule
ranks its own list
(`origin.core.keys.list_id`), rescored together with the control list; template overrides apply
when its bundles are rendered. Built without explicit `variants`, a recomputer follows the
published edge configuration: before each rescore, SKU-index lookup and full rebuild it reads
the current version (one GET) and, when it moved, adopts the new variants: their own lists are
ranked at once and their bundles are returned as impacted, so the pipeline recomputes (and if
need be purges) them. So the invalidation consumer keeps variant bundles true without a
restart. Bundles of variants that left the configuration are no longer maintained (nobody is
routed to them).

Candidate sources (``source`` in slots.toml): a slot's bundles take their candidates from its
segment's ranked list (the scoring), from an imported recommendation list of the segment
(`origin.core.list_store`; order kept, unknown and sold-out SKUs left out), or from the
imported list with the scoring filling in (`origin.core.list_candidates`). Either way the same
content-hash rule decides whether a bundle is written and purged. Anchored slots (``anchor`` in
slots.toml) have no segment partitions: their bundles are built per anchor SKU on request
(`origin.core.anchored_bundles`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from fragments.bundle import Bundle
from fragments.ids import FragmentKey, partition_of
from fragments.labels import LabelRule
from fragments.slots import ScoringWeights, SlotCatalog
from origin.core.builder import BundleBuilder
from origin.core.catalog import Product, Segment
from origin.core.config_store import ConfigReader
from origin.core.keys import list_id
from origin.core.list_candidates import candidates_from_list
from origin.core.list_ranking import TopScores
from origin.core.list_store import ListStore, StoredList
from origin.core.lists import list_key_id
from origin.core.purge_queue import PurgeRequest
from origin.core.scoring import ListScorer, price_change_moves_scores
from origin.core.store import ListChange, ListTop, Store, StoredState, list_depth
from origin.core.variants import CONTROL_BUNDLES, BundleVariant, variants_of
from origin.errors import RecomputeConflict

MAX_CAS_ATTEMPTS = 8
REFILL_CHUNK = 5000
"""Products read at a time when a list that ran short is ranked again from the catalog."""


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
        variants: Sequence[BundleVariant] | None = None,
        *,
        follows_segments: bool = False,
    ) -> None:
        """`variants` fixes the bundle variants (control is always included); None follows the
        published edge configuration in the store (see `sync_variants`). `follows_segments`
        re-reads the stored segments before each rescore and SKU-index lookup (see
        `sync_segments`): a long-running consumer then stops maintaining a removed segment and
        starts maintaining an added one."""
        self.store = store
        self.builder = builder
        self.slots: SlotCatalog = builder.slots
        self.follows_segments = follows_segments
        self._set_segments(segments)
        self.follows_published = variants is None
        self.config_version = 0
        """The published configuration version the variants come from (when following)."""
        self._configs = ConfigReader(store.redis, store.timeout)
        self._adopted: set[FragmentKey] = set()
        self._set_variants(variants or ())
        self.imported = ListStore(store.redis, store.timeout)
        """Imported recommendation lists (slots whose ``source`` names a list)."""

    def _set_segments(self, segments: Sequence[Segment]) -> None:
        self.segments = {s.id: s for s in segments}
        self.partitions = {
            p.id: p
            for p in (
                Partition(slot, seg)
                for slot, config in self.slots.slots.items()
                if config.anchor is None  # anchored slots: origin.core.anchored_bundles
                for seg in segments
            )
        }

    async def sync_segments(self) -> bool:
        """Follow the stored segments (one GET): True when they changed and were adopted.

        A no-op unless built with ``follows_segments``. The bundles of an added segment are
        built by whoever added it (`origin.core.segment_changes`); from here on this
        recomputer keeps them true, and no longer recomputes (so never resurrects) the bundles
        of a removed one.
        """
        return self._adopt_segments(await self._stored_segments())

    async def _stored_segments(self) -> list[Segment] | None:
        """The stored segments when following them (else None)."""
        return await self.store.segments() if self.follows_segments else None

    def _adopt_segments(self, segments: list[Segment] | None) -> bool:
        if segments is None or segments == list(self.segments.values()):
            return False
        self._set_segments(segments)
        return True

    async def sync(self) -> None:
        """`sync_segments` then `sync_variants`, their two reads in flight together (what
        every rescore and SKU-index lookup asks first, once per consumer window each)."""
        segments, version = await asyncio.gather(self._stored_segments(), self._published_version())
        self._adopt_segments(segments)
        await self._adopt_version(version)

    def _set_variants(self, variants: Sequence[BundleVariant]) -> None:
        chosen = [CONTROL_BUNDLES, *(v for v in variants if v.id != CONTROL_BUNDLES.id)]
        self.variants: tuple[BundleVariant, ...] = tuple(chosen)
        self._by_slot: dict[str, dict[str, BundleVariant]] = {
            slot: {v.id: v for v in chosen if v.applies_to(slot)} for slot in self.slots.slots
        }

    def variant_of(self, key: FragmentKey) -> BundleVariant:
        """How `key`'s bundle is built (control's way for a variant no longer configured)."""
        return self._by_slot.get(key.slot, {}).get(key.variant, CONTROL_BUNDLES)

    def _list_of(self, partition: str, variant: BundleVariant) -> str:
        if variant.own_list:
            slot, _, segment = partition.partition("/")
            return list_id(slot, segment, variant.id)
        return partition

    def _weights(self, slot: str, variant: BundleVariant) -> ScoringWeights:
        return variant.weights(self.slots.slots[slot].scoring)

    def _labels(self, slot: str, variant: BundleVariant) -> LabelRule:
        """The slot's custom-label rule, or the variant's when it overrides it."""
        return variant.labels if variant.labels is not None else self.slots.slots[slot].labels

    def _scorer(self, lists: Mapping[str, tuple[Partition, BundleVariant]]) -> ListScorer:
        return ListScorer(
            [
                (p.segment, self._weights(p.slot, v), self._labels(p.slot, v))
                for p, v in lists.values()
            ]
        )

    def _depths(self, lists: Mapping[str, tuple[Partition, BundleVariant]]) -> dict[str, int]:
        return {
            lid: list_depth(self.slots.slots[p.slot].candidates) for lid, (p, _) in lists.items()
        }

    def top_scores(self) -> TopScores:
        """An empty bulk ranking over every ranked list (see `merge_top_scores`)."""
        lists = self._lists()
        return TopScores(list(lists), self._depths(lists))

    def list_scorer(self) -> ListScorer:
        """Scores products for the lists of `top_scores`, in the same order."""
        return self._scorer(self._lists())

    def keys_of(self, partition: Partition) -> list[FragmentKey]:
        return [
            FragmentKey(partition.slot, partition.segment.id, variant, locale)
            for variant in self._by_slot[partition.slot]
            for locale in self.slots.locales
        ]

    def all_keys(self) -> list[FragmentKey]:
        return [k for p in self.partitions.values() for k in self.keys_of(p)]

    def _lists(self) -> dict[str, tuple[Partition, BundleVariant]]:
        """Every ranked list: id -> (partition, the variant whose weights rank it)."""
        out: dict[str, tuple[Partition, BundleVariant]] = {}
        for partition in self.partitions.values():
            out[partition.id] = (partition, CONTROL_BUNDLES)
            for variant in self._by_slot[partition.slot].values():
                if variant.own_list:
                    out[self._list_of(partition.id, variant)] = (partition, variant)
        return out

    async def sync_variants(self) -> bool:
        """Follow the published configuration: adopt its variants when its version moved.

        New or changed variants get their own lists ranked from current products at once; their
        bundles are handed to the caller through the next `rescore` / `bundles_showing` answer
        (added to every SKU's impacted keys), so the invalidation pipeline recomputes them with
        its purge request and a variant bundle that changed meanwhile is purged at the edge.
        Returns True when the variants changed. A no-op for fixed variants.
        """
        return await self._adopt_version(await self._published_version())

    async def _published_version(self) -> int | None:
        """The published configuration's version when following it (else None)."""
        return await self._configs.current_version() if self.follows_published else None

    async def _adopt_version(self, version: int | None) -> bool:
        if version is None or version == self.config_version:
            return False
        variants = variants_of(await self._configs.current())
        fresh = [v for v in variants if v.id != CONTROL_BUNDLES.id and v not in self.variants]
        before = self.variants
        if any(v.own_list for v in fresh):
            probe = Recomputer(self.store, self.builder, list(self.segments.values()), fresh)
            products = await self.store.products(await self.store.all_skus())
            await probe._rank_lists(list(products.values()), only_variants=True)
        self._set_variants(variants)
        fresh_ids = {v.id for v in fresh}
        self._adopted.update(k for k in self.all_keys() if k.variant in fresh_ids)
        self.config_version = version
        return self.variants != before

    def _with_adopted(self, by_sku: dict[str, set[FragmentKey]]) -> dict[str, set[FragmentKey]]:
        """Hand the bundles of just-adopted variants to the caller (once)."""
        if self._adopted and by_sku:
            for keys in by_sku.values():
                keys.update(self._adopted)
            self._adopted.clear()
        return by_sku

    async def prepare(
        self, variants: Sequence[BundleVariant], purge: PurgeRequest | None = None
    ) -> list[RecomputeResult]:
        """Rank the own lists of `variants` from current products and build all their bundles.

        Idempotent (bundles are written only when their content changed); with `purge`, a
        changed bundle's purge is enqueued with its write. The publisher calls it before a
        configuration goes live.
        """
        probe = Recomputer(self.store, self.builder, list(self.segments.values()), variants)
        if any(v.own_list for v in variants):
            products = await self.store.products(await self.store.all_skus())
            await probe._rank_lists(list(products.values()), only_variants=True)
        wanted = {v.id for v in variants}
        return await probe.recompute_many(
            {k: purge for k in probe.all_keys() if k.variant in wanted}
        )

    async def _rank_lists(self, products: Sequence[Product], *, only_variants: bool) -> None:
        lists = {
            lid: pair
            for lid, pair in self._lists().items()
            if pair[1].own_list or not only_variants
        }
        top = TopScores(list(lists), self._depths(lists))
        scorer = self._scorer(lists)
        for product in products:
            top.add(product.sku, scorer.scores(product))
        for lid, change in top.changes().items():
            await self.store.replace_list(lid, change.adds, change.floor)

    async def rebuild_all(
        self, products: Sequence[Product], purge: PurgeRequest | None = None
    ) -> list[RecomputeResult]:
        """Recompute every list from `products` and every bundle from the lists (with `purge`,
        a bundle whose content changed is purged)."""
        if self.follows_published:
            version = await self._configs.current_version()
            self._set_variants(variants_of(await self._configs.current()))
            self.config_version = version
        await self._rank_lists(products, only_variants=False)
        return await self.recompute_many(dict.fromkeys(self.all_keys(), purge))

    async def rescore(self, products: Sequence[Product]) -> dict[str, set[FragmentKey]]:
        """Update each product's score in every list; per SKU, the bundles it now belongs in
        (with, for slots whose candidates come from an imported list, the bundles whose list
        holds it)."""
        await self.sync()
        lists = self._lists()
        scorer = self._scorer(lists)
        adds: dict[str, dict[str, float]] = {lid: {} for lid in lists}
        removes: dict[str, list[str]] = {lid: [] for lid in lists}
        for product in products:
            for lid, value in zip(lists, scorer.scores(product), strict=True):
                if value > 0.0:
                    adds[lid][product.sku] = value
                else:
                    removes[lid].append(product.sku)
        changes = {lid: ListChange(adds[lid], removes[lid]) for lid in lists}
        impacted = await self._list_sourced_impacts(products)
        entering = await self._merge(changes, lists)
        for sku in {p.sku for p in products}:
            impacted.setdefault(sku, set()).update(entering.get(sku, ()))
        return self._with_adopted(impacted)

    async def merge_top_scores(self, top: TopScores) -> dict[str, set[FragmentKey]]:
        """Merge a bulk ranking of new products (`top_scores`) into the lists; per SKU, the
        bundles it now belongs in. The products must be in no list yet (new to the catalog)."""
        lists = self._lists()
        changes = {lid: c for lid, c in top.changes().items() if lid in lists}
        return await self._merge(changes, lists)

    async def _merge(
        self,
        changes: Mapping[str, ListChange],
        lists: Mapping[str, tuple[Partition, BundleVariant]],
    ) -> dict[str, set[FragmentKey]]:
        """Merge `changes` into the lists; per SKU among the changes, the bundles it is now in
        the top of. A list that ran short is ranked again from the whole catalog, and every
        bundle built from it is impacted."""
        within = {lid: self.slots.slots[lists[lid][0].slot].candidates for lid in changes}
        tops = await self.store.merge_scores(changes, within, self._depths(lists))
        out: dict[str, set[FragmentKey]] = {}
        short = [lid for lid, top in tops.items() if top.short]
        if short:
            refilled = await self._refill({lid: lists[lid] for lid in short})
            tops.update(refilled)
        for lid, top in tops.items():
            partition, variant = lists[lid]
            change = changes[lid]
            entered = list(top.entered)
            if lid in short:
                entered = [*change.adds, *change.removes]
            if entered:
                ranked_keys = self._keys_ranked_by(partition, variant)
                for sku in entered:
                    out.setdefault(sku, set()).update(ranked_keys)
        return out

    async def _refill(
        self, lists: Mapping[str, tuple[Partition, BundleVariant]]
    ) -> dict[str, ListTop]:
        """Rank `lists` again from every product in the catalog (read a chunk at a time)."""
        top = TopScores(list(lists), self._depths(lists))
        scorer = self._scorer(lists)
        skus = await self.store.all_skus()
        for start in range(0, len(skus), REFILL_CHUNK):
            chunk = await self.store.products(skus[start : start + REFILL_CHUNK], locations=False)
            for product in chunk.values():
                top.add(product.sku, scorer.scores(product))
        out: dict[str, ListTop] = {}
        for lid, change in top.changes().items():
            await self.store.replace_list(lid, change.adds, change.floor)
            within = self.slots.slots[lists[lid][0].slot].candidates
            best = sorted(change.adds.items(), key=lambda pair: (pair[1], pair[0]), reverse=True)
            best = best[:within]
            out[lid] = ListTop(
                {sku: i for i, (sku, _) in enumerate(best)},
                len(change.adds),
                change.floor[0] if change.floor else 0.0,
                within,
            )
        return out

    def _keys_ranked_by(self, partition: Partition, variant: BundleVariant) -> list[FragmentKey]:
        """The bundles built from the list that `variant`'s weights rank in `partition`."""
        if variant.own_list:
            return [k for k in self.keys_of(partition) if k.variant == variant.id]
        own = {v.id for v in self._by_slot[partition.slot].values() if v.own_list}
        return [k for k in self.keys_of(partition) if k.variant not in own]

    def price_move_rescores(self, before: int, after: int) -> bool:
        """Whether a price move from `before` to `after` (cents) can change any score: it crosses
        a price band of one of the segments this recomputer builds for."""
        return price_change_moves_scores(before, after, self.segments.values())

    async def current_products(self, skus: Sequence[str]) -> dict[str, Product]:
        """The products as stored now (without per-location stock), for the SKUs that exist."""
        return await self.store.products(skus, locations=False)

    async def enqueue_purge(self, key: FragmentKey, purge: PurgeRequest) -> None:
        """Enqueue a purge of `key` whatever its content (the no-suppression baseline)."""
        await self.store.enqueue_purge(key, purge)

    async def bundles_showing(self, skus: Sequence[str]) -> dict[str, set[FragmentKey]]:
        """Per SKU, the stored bundles of configured variants whose candidates include it."""
        await self.sync()
        found = await self.store.bundles_showing(skus, list(self.partitions))
        return self._with_adopted(
            {
                sku: {k for k in keys if k.variant in self._by_slot.get(k.slot, {})}
                for sku, keys in found.items()
            }
        )

    # --- imported lists as candidate sources -----------------------------------------------

    @staticmethod
    def _imported_id(segment: str, name: str) -> str:
        return list_key_id("segment", segment, name)

    async def _imported_lists(self, bundle_keys: Sequence[FragmentKey]) -> dict[str, StoredList]:
        """The imported lists the list-sourced slots among `bundle_keys` take candidates from."""
        wanted = {
            self._imported_id(k.segment, name)
            for k in bundle_keys
            if (name := self.slots.slots[k.slot].source.list_name) is not None
        }
        return await self.imported.get_many(sorted(wanted)) if wanted else {}

    def keys_using_list(self, kind: str, target: str, name: str) -> list[FragmentKey]:
        """The bundles whose candidates come from the imported list (kind, target, name).

        Segment lists feed the partitions of the slots whose ``source`` names the list; anchor
        lists feed no bundle yet (the shopper-context work serves them).
        """
        if kind != "segment" or target not in self.segments:
            return []
        return [
            key
            for slot, config in self.slots.slots.items()
            if config.source.list_name == name and config.anchor is None
            for key in self.keys_of(self.partitions[partition_of(slot, target)])
        ]

    async def _list_sourced_impacts(
        self, products: Sequence[Product]
    ) -> dict[str, set[FragmentKey]]:
        """Per SKU, the bundles of list-sourced slots whose imported list holds it (a restock
        or a price change of a listed SKU must reach them although no score moved)."""
        sourced = {
            (slot, config.source.list_name)
            for slot, config in self.slots.slots.items()
            if config.source.list_name is not None and config.anchor is None
        }
        if not sourced or not products:
            return {}
        wanted = {
            self._imported_id(segment, name): (slot, segment)
            for slot, name in sourced
            for segment in self.segments
        }
        stored = await self.imported.get_many(sorted(wanted))
        holders: dict[str, set[str]] = {}
        for lid, lst in stored.items():
            for item in lst.items:
                holders.setdefault(item.sku, set()).add(lid)
        out: dict[str, set[FragmentKey]] = {}
        for product in products:
            for lid in holders.get(product.sku, ()):
                slot, segment = wanted[lid]
                out.setdefault(product.sku, set()).update(
                    self.keys_of(self.partitions[partition_of(slot, segment)])
                )
        return out

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
            lists = {k: self._list_of(k.partition, self.variant_of(k)) for k in pending}
            limits = {lists[k]: self.slots.slots[k.slot].candidates for k in pending}
            # Three independent reads, their round trips overlapped.
            states, tops, imported = await asyncio.gather(
                self.store.stored_states(pending),
                self.store.tops(limits),
                self._imported_lists(pending),
            )
            products = await self.store.products(
                {sku for top in tops.values() for sku, _ in top}
                | {item.sku for stored in imported.values() for item in stored.items},
                locations=False,
            )
            writes: list[tuple[Bundle, StoredState | None, PurgeRequest | None]] = []
            for key in pending:
                previous = states[key]
                variant = self.variant_of(key)
                ranked = [(products[s], v) for s, v in tops[lists[key]] if s in products]
                source = self.slots.slots[key.slot].source
                if source.list_name is not None:
                    stored = imported.get(self._imported_id(key.segment, source.list_name))
                    ranked = candidates_from_list(
                        stored.items if stored else None,
                        products,
                        ranked if source.scoring else None,
                        self.slots.slots[key.slot].candidates,
                        self._labels(key.slot, variant),
                    )
                bundle = self.builder.build(
                    key,
                    ranked,
                    previous.version if previous else 1,
                    wrapper_template=variant.wrapper_template,
                    card_template=variant.card_template,
                )
                if previous is not None:
                    if previous.content_hash == bundle.content_hash:
                        results.append(RecomputeResult(key, changed=False, bundle=bundle))
                        continue
                    bundle = replace(bundle, version=previous.version + 1)
                writes.append((bundle, previous, requests[key]))
            conflicts: list[FragmentKey] = []
            outcomes = await self.store.put_bundles(writes) if writes else []
            for (bundle, _, _), outcome in zip(writes, outcomes, strict=True):
                if outcome.written:
                    results.append(RecomputeResult(bundle.key, changed=True, bundle=bundle))
                else:
                    conflicts.append(bundle.key)
            pending = conflicts
        if pending:
            names = ", ".join(k.cache_key for k in pending)
            raise RecomputeConflict(f"bundles changed concurrently {MAX_CAS_ATTEMPTS}x: {names}")
        return results
