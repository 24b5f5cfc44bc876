"""Imported lists against a real Redis: bundles built from them, purges only on visible change.

The slots are the shipped ones with two list sources: home-hero takes ``list:top|scoring``
(the list, then the scoring filling in), cart-upsell ``list:top`` (the list alone).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import DEFAULT_SLOTS_FILE, SlotCatalog, parse_slots
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.envelope import open_envelope
from origin.core.list_import import import_lists
from origin.core.lists import ImportedList, RankedItem, parse_list_lines
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text
from origin.core.seed import seed_demo
from origin.core.store import Store

PURGER = "local-edge"
SEGMENT = "tech-enthusiasts"


def list_slots() -> SlotCatalog:
    text = DEFAULT_SLOTS_FILE.read_text()
    text = text.replace(
        "max_per_category = 3\n", 'max_per_category = 3\nsource = "list:top|scoring"\n', 1
    )
    text = text.replace("max_per_category = 1\n", 'max_per_category = 1\nsource = "list:top"\n', 1)
    slots = parse_slots(text)
    assert slots.slots["home-hero"].source.scoring
    assert slots.slots["cart-upsell"].source.list_name == "top"
    return slots


@pytest.fixture
async def world(redis_client: RedisLike) -> Recomputer:
    store = Store(redis_client, 5.0)
    slots = list_slots()
    await seed_demo(store, slots, 42, 300)
    return Recomputer(store, BundleBuilder(slots), await store.segments())


async def shown(r: Recomputer, slot: str, segment: str = SEGMENT) -> list[str]:
    raw = await r.store.get_envelope(FragmentKey(slot, segment))
    assert raw is not None
    return list(decode_bundle(open_envelope(raw).body).skus)


async def queued(redis: RedisLike, slot: str, segment: str = SEGMENT) -> set[str]:
    rows = await redis.zrange(keys.purge_queue_key(f"{slot}/{segment}", PURGER), 0, -1)
    return {as_text(t) for t in rows if isinstance(t, bytes | str)}


def lines(*docs: str) -> list[tuple[int, ImportedList]]:
    parsed = list(parse_list_lines(docs, version=1))
    assert all(isinstance(item, ImportedList) for _, item in parsed)
    return parsed  # type: ignore[return-value]


def doc(skus: list[str], version: int, segment: str = SEGMENT) -> str:
    return json.dumps({"segment": segment, "name": "top", "version": version, "items": skus})


PURGE = PurgeRequest((PURGER,), 1, 1)


async def test_list_feeds_its_slots_unknown_reported_sold_out_excluded(
    world: Recomputer, redis_client: RedisLike
) -> None:
    skus = list(await world.store.all_skus())
    products = await world.store.products(skus, locations=False)
    sold_out = next(s for s, p in products.items() if p.stock == 0)
    listed = [skus[10], "NOPE-1", sold_out, skus[11], skus[12]]
    report = await import_lists(world, lines(doc(listed, 1)), PURGE)
    assert (report.created, report.rejected) == (1, 0)
    assert report.unknown_skus == {f"segment/{SEGMENT}/top": ["NOPE-1"]}
    # list alone: its known, in-stock SKUs in its order
    assert await shown(world, "cart-upsell") == [skus[10], skus[11], skus[12]]
    # list first, then the scoring fills in up to the slot's candidates
    hero = await shown(world, "home-hero")
    assert hero[:3] == [skus[10], skus[11], skus[12]]
    assert len(hero) == world.slots.slots["home-hero"].candidates
    assert sold_out not in hero
    raw = await world.store.get_envelope(FragmentKey("home-hero", SEGMENT))
    assert raw is not None
    scores = [c.score for c in decode_bundle(open_envelope(raw).body).candidates]
    assert scores == sorted(
        scores, reverse=True
    )  # the edge (sorting by score) keeps the list first
    # other segments have no list: cart-upsell is empty there, home-hero is the scoring's
    assert await shown(world, "cart-upsell", "home-makers") == []
    assert len(await shown(world, "home-hero", "home-makers")) == 100
    assert "bundle:cart-upsell/tech-enthusiasts/control/en-US" in await queued(
        redis_client, "cart-upsell"
    )


async def test_reimport_purges_nothing_and_a_change_purges_only_what_changed(
    world: Recomputer, redis_client: RedisLike
) -> None:
    skus = await world.store.all_skus()
    first = skus[20:30]
    await import_lists(world, lines(doc(first, 1)), PURGE)
    for slot in ("home-hero", "cart-upsell", "pdp-cross-sell"):
        await redis_client.delete(keys.purge_queue_key(f"{slot}/{SEGMENT}", PURGER))
    again = await import_lists(world, lines(doc(first, 2)), PURGE)
    assert (again.unchanged, again.changed) == (1, [])
    assert again.recomputed == 4  # two list-sourced slots x two locales, all unchanged
    assert await queued(redis_client, "home-hero") == set()
    # a change beyond cart-upsell's 40 candidates... the list is 10 long: swap the last two
    changed = [*first[:8], first[9], first[8]]
    report = await import_lists(world, lines(doc(changed, 3)), PURGE)
    assert report.replaced == 1
    assert {k.slot for k in report.changed} == {"home-hero", "cart-upsell"}
    assert await queued(redis_client, "pdp-cross-sell") == set()  # scoring slot untouched
    stale = await import_lists(world, lines(doc(first, 2)), PURGE)
    assert (stale.stale, stale.changed) == (1, [])
    assert (await shown(world, "cart-upsell"))[-2:] == [first[9], first[8]]


async def test_a_short_list_is_filled_and_a_missing_one_falls_back(world: Recomputer) -> None:
    skus = await world.store.all_skus()
    scoring_only = await shown(world, "home-hero")
    assert len(scoring_only) == 100  # no list yet: the scoring
    await import_lists(world, lines(doc([skus[3]], 1)), PURGE)
    hero = await shown(world, "home-hero")
    assert hero[0] == skus[3]
    assert hero[1:] == [s for s in scoring_only if s != skus[3]][:99]


async def test_unknown_segment_is_rejected_with_line_and_field(world: Recomputer) -> None:
    report = await import_lists(
        world, lines(doc(["SKU-00001"], 1), doc(["SKU-00001"], 1, "nobody")), PURGE
    )
    assert report.created == 1
    assert [(r.line, r.field) for r in report.rejections] == [(2, "segment")]
    assert "unknown segment 'nobody'" in report.rejections[0].reason


async def test_a_concurrent_reader_never_sees_half_a_list(world: Recomputer) -> None:
    a = tuple(RankedItem(f"A-{i}", 1.0) for i in range(400))
    b = tuple(RankedItem(f"B-{i}", 1.0) for i in range(400))
    seen: set[tuple[int, str]] = set()
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            stored = await world.imported.get("segment/tech-enthusiasts/big")
            if stored is not None:
                prefixes = {i.sku[0] for i in stored.items}
                assert len(prefixes) == 1, "a mix of two versions"
                assert len(stored.items) == 400
                seen.add((stored.version, prefixes.pop()))

    reader = asyncio.create_task(read())
    for version in range(1, 60):
        items = a if version % 2 else b
        await world.imported.put_many([ImportedList("segment", SEGMENT, "big", version, items)])
        await asyncio.sleep(0)
    done.set()
    await reader
    assert all(prefix == ("A" if v % 2 else "B") for v, prefix in seen)
    assert len(seen) > 5
