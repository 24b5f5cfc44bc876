"""The invalidation consumer keeps variant bundles true: its recomputer follows the published
configuration (no restart), rescores scoring variants' own lists and rebuilds variant bundles,
and stops maintaining variants that left the configuration."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from invalidation.apply import EventApplier
from invalidation.events import InventoryEvent
from invalidation.pipeline import InvalidationPipeline
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.envelope import open_envelope
from origin.core.recompute import Recomputer
from origin.core.redis_client import RedisLike
from origin.core.store import Store
from tests.invalidation.support import record_of
from tests.origin.experiments.support import EDITOR, hero_experiment, if_match

COMPACT = FragmentKey("home-hero", "everyone", "compact")


async def follower(redis: RedisLike) -> Recomputer:
    """A recomputer built the way the invalidation service builds one (no explicit variants)."""
    store = Store(redis, 5.0)
    return Recomputer(store, BundleBuilder(load_slots()), await store.segments())


async def shown(redis: RedisLike, key: FragmentKey) -> tuple[str, ...]:
    raw = await Store(redis, 5.0).get_envelope(key)
    assert raw is not None, f"{key.cache_key} is not stored"
    return decode_bundle(open_envelope(raw).body).skus


async def sell_out(redis: RedisLike, recomputer: Recomputer, sku: str) -> list[FragmentKey]:
    product = await Store(redis, 5.0).product(sku)
    assert product is not None
    version = time.time_ns() // 1000
    events = [
        InventoryEvent(
            f"sellout-{sku}-{loc}", sku, loc, 0, version, datetime(2026, 11, 23, tzinfo=UTC)
        )
        for loc in product.locations
    ]
    pipeline = InvalidationPipeline(EventApplier(redis), recomputer, ["local-edge"])
    report = await pipeline.process([record_of(e, i) for i, e in enumerate(events)])
    assert report.applied == len(events)
    return report.changed


async def start(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/experiments", json=hero_experiment(), headers=EDITOR)).is_success
    assert (await api.post("/v1/experiments/hero/start", headers=if_match(1))).is_success


async def test_follower_adopts_a_started_experiment_and_keeps_its_bundles_true(
    api: httpx.AsyncClient, seeded: RedisLike
) -> None:
    recomputer = await follower(seeded)  # built before the experiment exists, like a consumer
    assert [v.id for v in recomputer.variants] == ["control"]
    await start(api)
    top = (await shown(seeded, COMPACT))[0]

    changed = await sell_out(seeded, recomputer, top)

    assert recomputer.config_version == 1
    assert [v.id for v in recomputer.variants] == ["control", "compact"]
    assert COMPACT in changed
    assert top not in await shown(seeded, COMPACT)
    variant_list = keys.segment_list_key(keys.list_id("home-hero", "everyone", "compact"))
    assert await seeded.zscore(variant_list, top) is None
    assert COMPACT in recomputer.all_keys()


async def test_variant_bundles_recompute_to_what_is_stored(
    api: httpx.AsyncClient, seeded: RedisLike
) -> None:
    await start(api)
    recomputer = await follower(seeded)
    await recomputer.sync_variants()
    top = (await shown(seeded, COMPACT))[0]
    await sell_out(seeded, recomputer, top)

    results = await recomputer.recompute_many(dict.fromkeys(recomputer.all_keys()))

    assert [r.key.cache_key for r in results if r.changed] == []
    assert any(r.key.variant == "compact" for r in results)


async def test_a_stopped_experiment_leaves_the_follower(
    api: httpx.AsyncClient, seeded: RedisLike
) -> None:
    await start(api)
    recomputer = await follower(seeded)
    await recomputer.sync_variants()
    sku = (await shown(seeded, COMPACT))[0]
    assert COMPACT in (await recomputer.bundles_showing([sku]))[sku]

    stopped = await api.post("/v1/experiments/hero/stop", headers=if_match(2))
    showing = await recomputer.bundles_showing([sku])

    assert stopped.status_code == 200
    assert [v.id for v in recomputer.variants] == ["control"]
    assert all(k.variant == "control" for k in showing[sku])


async def test_seed_rebuild_includes_published_variants(
    api: httpx.AsyncClient, seeded: RedisLike
) -> None:
    await start(api)
    await seeded.delete(keys.bundle_key(COMPACT))
    await seeded.hdel(keys.partition_hashes_key(COMPACT.partition), COMPACT.cache_key)
    store = Store(seeded, 5.0)
    products = list((await store.products(await store.all_skus())).values())

    results = await (await follower(seeded)).rebuild_all(products)

    assert COMPACT in {r.key for r in results}
    assert await store.get_envelope(COMPACT) is not None
    top = await seeded.zrevrange(keys.segment_list_key("home-hero/everyone/compact"), 0, 0)
    assert len(top) == 1
