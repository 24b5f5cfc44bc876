"""Bounded ranked lists: the bulk ranking (pure) and the Redis merge keep a list equal to the best
products of a full ranking, above a floor that no product outside it beats."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import pytest
from redis.asyncio import Redis

from origin.core import keys
from origin.core.list_ranking import FLUSH_EVERY, TopScores
from origin.core.redis_text import as_text
from origin.core.store import ListChange, Store, list_depth
from tests.invalidation.support import seed_world

LIST = "home-hero/everyone"


def best_first(scores: dict[str, float]) -> list[tuple[float, str]]:
    """The list order: score, then SKU, best first (positive scores only)."""
    return sorted(((v, s) for s, v in scores.items() if v > 0), reverse=True)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("depth", [1, 7, 50])
def test_top_scores_keep_the_best_of_a_full_ranking_and_the_best_left_out(
    seed: int, depth: int
) -> None:
    rng = random.Random(seed)
    count = rng.choice([0, 5, 60, FLUSH_EVERY + 300])
    values = [0.0, 0.25, 0.5, 0.75, 1.0]  # few values: ties everywhere, as in a feed
    truth = [{f"SKU-{i:05d}": rng.choice(values) for i in range(count)} for _ in range(2)]
    top = TopScores(["a", "b"], {"a": depth, "b": depth + 3})
    for i in range(count):
        sku = f"SKU-{i:05d}"
        top.add(sku, (truth[0][sku], truth[1][sku]))
    changes = top.changes()
    for lid, scores in zip(("a", "b"), truth, strict=True):
        want = best_first(scores)
        keep = depth if lid == "a" else depth + 3
        change = changes[lid]
        assert best_first(dict(change.adds)) == want[:keep]
        assert change.floor == (want[keep] if len(want) > keep else None)


@pytest.fixture
def store(redis_client: Redis) -> Store:
    return Store(redis_client, 5.0)


async def stored(store: Store) -> tuple[list[tuple[float, str]], Any]:
    rows: list[Any] = await store.redis.zrange(keys.segment_list_key(LIST), 0, -1, withscores=True)
    floor = await store.redis.hget(keys.list_floors_key(LIST), LIST)
    return sorted(((float(v), as_text(s)) for s, v in rows), reverse=True), floor


@pytest.mark.parametrize("seed", range(4))
async def test_merged_scores_keep_a_list_equal_to_the_best_of_the_catalog(
    store: Store, seed: int
) -> None:
    """Random rescoring rounds (rises, falls, sell-outs) against the truth of every score: the
    list is always a prefix of the full ranking, and reports itself short when it no longer
    holds what its bundles need while products outside it could."""
    rng = random.Random(seed)
    depth, within = 12, 4
    truth: dict[str, float] = {}
    values = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    for round_ in range(40):
        batch = rng.sample(range(60), rng.randint(1, 15))
        adds: dict[str, float] = {}
        removes: list[str] = []
        for i in batch:
            sku = f"SKU-{i:03d}"
            truth[sku] = rng.choice(values)
            if truth[sku] > 0:
                adds[sku] = truth[sku]
            else:
                removes.append(sku)
        tops = await store.merge_scores(
            {LIST: ListChange(adds, removes)}, {LIST: within}, {LIST: depth}
        )
        have, floor = await stored(store)
        want = best_first(truth)
        top = tops[LIST]
        assert have == want[: len(have)], round_
        assert len(have) <= depth
        best = [s for _, s in have[:within]]
        assert top.entered == {s: best.index(s) for s in best if s in adds}, round_
        if len(have) < len(want):
            assert floor is not None
            value, _, sku = as_text(floor).partition(" ")
            assert (float(value), sku) >= want[len(have)]  # nothing outside beats the floor
        assert top.short == (len(have) < within and floor is not None)
        if top.short:  # what the recomputer does: rank the list again from every product
            kept = {s: v for v, s in want[:depth]}
            rest = want[depth] if len(want) > depth else None
            await store.replace_list(LIST, kept, (rest[0], rest[1]) if rest else None)


async def test_a_floor_hint_drops_members_at_or_below_it(store: Store) -> None:
    await store.replace_list(LIST, {"A": 0.5, "B": 0.3, "C": 0.3, "D": 0.1})
    tops = await store.merge_scores(
        {LIST: ListChange({"E": 0.4}, (), (0.3, "B"))}, {LIST: 10}, {LIST: 10}
    )
    have, floor = await stored(store)
    assert have == [(0.5, "A"), (0.4, "E"), (0.3, "C")]  # B (the floor) and below left
    assert as_text(floor) == "0.29999999999999999 B"
    assert tops[LIST].size == 3


async def test_a_list_that_runs_short_is_ranked_again_from_the_catalog(
    redis_client: Redis,
) -> None:
    """Sell out most of a bounded list: it no longer holds what its bundles carry, so the
    recomputer ranks it again from every product, and lists and bundles equal a fresh build."""
    world = await seed_world(redis_client)
    lid = "cart-upsell/bargain-hunters"  # 40 candidates: the list keeps 200 of 300 products
    listed: list[Any] = await redis_client.zrevrange(keys.segment_list_key(lid), 0, -1)
    assert len(listed) == list_depth(40) == 200
    assert await redis_client.hget(keys.list_floors_key(lid), lid) is not None
    sold = [as_text(s) for s in listed[:185]]
    gone = [replace(p, stock=0, locations={}) for p in (await world.store.products(sold)).values()]
    await world.store.load_catalog(gone, list(world.recomputer.segments.values()))
    entering = await world.recomputer.rescore(gone)
    impacted = {key for keys_ in entering.values() for key in keys_}
    assert {k.partition for k in impacted} >= {lid}  # the refilled list's bundles
    await world.recomputer.recompute_many(dict.fromkeys(world.recomputer.all_keys()))
    refilled: list[Any] = await redis_client.zrevrange(keys.segment_list_key(lid), 0, -1)
    assert len(refilled) > 15
    assert not {as_text(s) for s in refilled} & set(sold)
    assert await world.consistency_problems() == []
