"""The store's bundle writes against real Redis: hash tags, tag-index consistency, CAS.

After any sequence of recomputes -- including concurrent recomputes of the same key -- the
SKU -> bundles index must match the stored bundles exactly: every SKU a bundle shows maps back
to it, and no index entry names a bundle that does not show the SKU.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from redis.asyncio.cluster import ClusterPipeline
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from fragments.bundle import Bundle, decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.catalog import Product
from origin.core.demo_catalog import DemoCatalog, generate_catalog
from origin.core.envelope import open_envelope
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_bytes
from origin.core.store import PutOutcome, Store, StoredState
from tests.support.redis_topology import connect

N_SKUS = 150
HERO = FragmentKey("home-hero", "everyone")


@dataclass
class World:
    redis: RedisLike
    store: Store
    catalog: DemoCatalog
    recomputer: Recomputer


@pytest.fixture
async def world(redis_client: RedisLike) -> World:
    """An empty Redis with the small catalog loaded and every bundle built."""
    catalog = generate_catalog(7, N_SKUS)
    store = Store(redis_client, 5.0)
    await store.load_catalog(catalog.products, catalog.segments)
    recomputer = Recomputer(store, BundleBuilder(load_slots()), catalog.segments)
    await recomputer.rebuild_all(catalog.products)
    return World(redis_client, store, catalog, recomputer)


@pytest.fixture
async def extra_clients(redis_url: str) -> AsyncIterator[list[RedisLike]]:
    """Separate connections, so concurrent recomputes really interleave on the server."""
    clients = [connect(redis_url) for _ in range(6)]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def stored_bundles(redis: RedisLike) -> dict[str, Bundle]:
    """Every stored bundle by cache key, found through the partitions' hash registers."""
    out: dict[str, Bundle] = {}
    async for raw in redis.scan_iter(match="se:{b:*}:hashes", count=1000):
        for cache_key in await redis.hkeys(_text(raw)):
            key = FragmentKey.from_cache_key(_text(cache_key))
            envelope = await redis.get(keys.bundle_key(key))
            assert envelope is not None, f"hash register names {key.cache_key} but no bundle"
            out[key.cache_key] = decode_bundle(open_envelope(as_bytes(envelope)).body)
    return out


async def assert_index_consistent(redis: RedisLike) -> dict[str, Bundle]:
    bundles = await stored_bundles(redis)
    assert bundles, "no bundles stored"
    partitions = {b.key.partition for b in bundles.values()}
    for partition in partitions:
        hashes = {
            _text(k): _text(v)
            for k, v in (await redis.hgetall(keys.partition_hashes_key(partition))).items()
        }
        shown = {
            _text(k): _text(v).split()
            for k, v in (await redis.hgetall(keys.partition_bundles_key(partition))).items()
        }
        index = {
            _text(k): _text(v).split()
            for k, v in (await redis.hgetall(keys.partition_index_key(partition))).items()
        }
        assert set(shown) == set(hashes)
        for cache_key, register in hashes.items():
            bundle = bundles[cache_key]
            content_hash, _, version = register.partition(" ")
            assert (content_hash, int(version)) == (bundle.content_hash, bundle.version)
            assert shown[cache_key] == list(bundle.skus)
            for sku in bundle.skus:
                assert cache_key in index.get(sku, []), f"{sku} does not map back to {cache_key}"
        for sku, cache_keys in index.items():
            assert cache_keys, f"empty index entry for {sku}"
            assert len(set(cache_keys)) == len(cache_keys), f"duplicate keys for {sku}"
            for cache_key in cache_keys:
                assert cache_key in bundles, f"index entry {sku} -> missing bundle {cache_key}"
                assert sku in bundles[cache_key].skus, f"{sku} -> {cache_key} which hides it"
    return bundles


async def _change(world: World, products: Sequence[Product]) -> None:
    await world.store.load_catalog(products, world.catalog.segments)


def _shown_everywhere(bundles: dict[str, Bundle]) -> list[str]:
    """SKUs in the most bundles first (deterministic)."""
    counts: dict[str, int] = {}
    for bundle in bundles.values():
        for sku in bundle.skus:
            counts[sku] = counts.get(sku, 0) + 1
    return sorted(counts, key=lambda s: (-counts[s], s))


async def test_index_matches_bundles_after_a_full_build(world: World) -> None:
    bundles = await assert_index_consistent(world.redis)
    assert len(bundles) == 3 * 7 * 2


async def test_index_stays_consistent_through_sell_outs_price_and_count_changes(
    world: World,
) -> None:
    before = await assert_index_consistent(world.redis)
    popular = _shown_everywhere(before)
    by_sku = {p.sku: p for p in world.catalog.products}
    sold_out = [replace(by_sku[s], stock=0) for s in popular[:5]]
    repriced = [replace(by_sku[s], price_cents=by_sku[s].price_cents * 7) for s in popular[5:10]]
    recounted = [replace(by_sku[s], stock=by_sku[s].stock + 1) for s in popular[10:15]]
    changed = [*sold_out, *repriced, *recounted]
    await _change(world, changed)

    impacted = await world.recomputer.rescore(changed)
    showing = await world.recomputer.bundles_showing([p.sku for p in changed])
    todo = {k for group in (*impacted.values(), *showing.values()) for k in group}
    results = await world.recomputer.recompute_many(dict.fromkeys(sorted(todo, key=str)))

    after = await assert_index_consistent(world.redis)
    assert any(r.changed for r in results)
    gone = {p.sku for p in sold_out}
    assert not any(gone & set(b.skus) for b in after.values())
    for sku in gone:
        for partition in {b.key.partition for b in after.values()}:
            assert await world.redis.hget(keys.partition_index_key(partition), sku) is None
    for cache_key, bundle in after.items():
        if bundle.content_hash != before[cache_key].content_hash:
            assert bundle.version == before[cache_key].version + 1


async def test_concurrent_recomputes_of_one_key_write_once(
    world: World, extra_clients: list[RedisLike]
) -> None:
    before = (await stored_bundles(world.redis))[HERO.cache_key]
    top = before.skus[0]
    product = next(p for p in world.catalog.products if p.sku == top)
    await _change(world, [replace(product, stock=0)])
    await world.recomputer.rescore([replace(product, stock=0)])
    barrier = asyncio.Barrier(len(extra_clients))
    refused: list[FragmentKey] = []

    class RacingStore(Store):
        """Holds every writer until all have read and built: a guaranteed write race."""

        async def put_bundles(
            self, writes: Sequence[tuple[Bundle, StoredState | None, PurgeRequest | None]]
        ) -> list[PutOutcome]:
            await barrier.wait()
            outcomes = await super().put_bundles(writes)
            refused.extend(
                b.key for (b, _, _), o in zip(writes, outcomes, strict=True) if not o.written
            )
            return outcomes

    recomputers = [
        Recomputer(RacingStore(client, 5.0), BundleBuilder(load_slots()), world.catalog.segments)
        for client in extra_clients
    ]

    results = await asyncio.gather(*(r.recompute(HERO) for r in recomputers))

    assert refused == [HERO] * (len(extra_clients) - 1)
    assert sum(r.changed for r in results) == 1
    assert len({r.bundle.content_hash for r in results}) == 1
    bundles = await assert_index_consistent(world.redis)
    stored = bundles[HERO.cache_key]
    assert stored.version == before.version + 1
    assert top not in stored.skus


async def test_interleaved_changes_and_recomputes_converge(
    world: World, extra_clients: list[RedisLike]
) -> None:
    before = (await stored_bundles(world.redis))[HERO.cache_key]
    by_sku = {p.sku: p for p in world.catalog.products}
    victims = [by_sku[s] for s in before.skus[:6]]

    async def sell_out_and_recompute(client: RedisLike, product: Product) -> None:
        store = Store(client, 5.0)
        recomputer = Recomputer(store, BundleBuilder(load_slots()), world.catalog.segments)
        gone = replace(product, stock=0)
        await store.load_catalog([gone], world.catalog.segments)
        impacted = await recomputer.rescore([gone])
        await recomputer.recompute_many(dict.fromkeys(sorted(impacted[gone.sku], key=str)))
        await recomputer.recompute(HERO)

    await asyncio.gather(
        *(sell_out_and_recompute(c, p) for c, p in zip(extra_clients, victims, strict=True))
    )

    bundles = await assert_index_consistent(world.redis)
    assert not {p.sku for p in victims} & set(bundles[HERO.cache_key].skus)
    # Converged: one more recompute finds nothing to change.
    again = await world.recomputer.recompute(HERO)
    assert not again.changed


async def test_a_stale_writer_is_refused_and_leaves_the_index_alone(world: World) -> None:
    current = (await stored_bundles(world.redis))[HERO.cache_key]
    stale_state = await world.store.stored_state(HERO)
    assert stale_state is not None
    first = replace(
        current,
        candidates=current.candidates[1:],
        content_hash="a" * 32,
        version=current.version + 1,
    )
    second = replace(
        current,
        candidates=current.candidates[2:],
        content_hash="b" * 32,
        version=current.version + 1,
    )

    assert (await world.store.put_bundle(first, stale_state)).written
    outcome = await world.store.put_bundle(second, stale_state)

    assert not outcome.written
    assert outcome.current is not None
    assert outcome.current.content_hash == "a" * 32
    bundles = await assert_index_consistent(world.redis)
    assert bundles[HERO.cache_key].skus == first.skus


def _hash_tag(redis_key: str) -> str:
    match = re.search(r"\{([^}]*)\}", redis_key)
    assert match is not None, f"{redis_key} has no hash tag"
    return match.group(1)


async def test_every_lua_call_of_the_store_touches_one_hash_tag(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real_call = AsyncScript.__call__

    async def spy(
        script: AsyncScript, keys: Any = None, args: Any = None, client: Any = None
    ) -> Any:
        # Every Lua call of the store goes through a registered script, pipelined or not.
        calls.append([_text(k) for k in keys or ()])
        return await real_call(script, keys, args, client)

    real_eval = ClusterPipeline.eval

    def spy_eval(pipe: ClusterPipeline, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        # In a cluster pipeline a script goes as EVAL (origin.core.redis_scripts).
        calls.append([_text(k) for k in keys_and_args[:numkeys]])
        return real_eval(pipe, script, numkeys, *keys_and_args)

    monkeypatch.setattr(AsyncScript, "__call__", spy)
    monkeypatch.setattr(ClusterPipeline, "eval", spy_eval)
    purge = PurgeRequest(("local-edge", "varnish", "cloudflare"), priority=0, at_ms=1)
    current = (await stored_bundles(world.redis))[HERO.cache_key]
    state = await world.store.stored_state(HERO)
    changed = replace(current, candidates=current.candidates[1:], content_hash="c" * 32)

    await world.store.put_bundle(changed, state, purge)
    await world.store.enqueue_purge(HERO, purge)
    await world.store.enqueue_purge(FragmentKey("cart-upsell", "young-families", "b"), purge)

    assert len(calls) == 3
    assert len(calls[0]) == 4 + 2 * 3  # bundle, hashes, index, bundle->skus, 3 purge queues
    for call_keys in calls:
        assert len({_hash_tag(k) for k in call_keys}) == 1, call_keys
        assert len({key_slot(k.encode()) for k in call_keys}) == 1, call_keys
        assert all(k.startswith(keys.NAMESPACE + ":") for k in call_keys)
