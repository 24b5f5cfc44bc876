"""`InvalidationPipeline.process` on a real Redis: what changes, what is recomputed and purged."""

from __future__ import annotations

from fragments.bundle import decode_bundle
from fragments.ids import FragmentKey
from fragments.render import format_money
from fragments.tags import bundle_tag
from invalidation.apply import EventApplier
from invalidation.events import Event, InventoryEvent, PriceEvent
from invalidation.records import DecodedRecords, Record
from origin.core import keys
from origin.core.envelope import open_envelope
from origin.core.purge_queue import PURGE_PRIORITY_SPAN
from origin.core.redis_client import RedisLike
from origin.core.redis_text import as_text
from origin.core.scoring import price_change_moves_scores, rank
from tests.invalidation.support import WHEN, World, record_of

PURGER = "local-edge"


def records(events: list[Event], first_offset: int = 0) -> list[Record]:
    return [record_of(e, first_offset + i) for i, e in enumerate(events)]


def stock(sku: str, location: str, available: int, version: int, tag: str = "") -> InventoryEvent:
    return InventoryEvent(
        f"{tag}{sku}-{location}-{version}", sku, location, available, version, WHEN
    )


def sell_out(world: World, sku: str, version: int) -> list[Event]:
    return [
        stock(sku, loc, 0, version + i)
        for i, loc in enumerate(sorted(world.product(sku).locations))
    ]


async def showing(world: World) -> dict[str, set[FragmentKey]]:
    """SKU -> the stored bundles that show it."""
    out: dict[str, set[FragmentKey]] = {}
    for key, skus in (await world.bundle_skus()).items():
        for sku in skus:
            out.setdefault(sku, set()).add(key)
    return out


async def most_shown(world: World, count: int, *, min_units: int = 0) -> list[str]:
    """The `count` SKUs shown by the most bundles (with at least `min_units` everywhere)."""
    shown = await showing(world)
    ok = [s for s in shown if min(world.product(s).locations.values()) >= min_units]
    return sorted(ok, key=lambda s: (-len(shown[s]), s))[:count]


async def queue_generations(world: World, purger: str = PURGER) -> dict[str, int]:
    out: dict[str, int] = {}
    for partition in world.recomputer.partitions:
        raw = await world.redis.hgetall(keys.purge_generation_key(partition, purger))
        out.update((as_text(k), int(v)) for k, v in raw.items())
    return out


async def test_count_only_noise_changes_no_bundle_and_enqueues_nothing(world: World) -> None:
    skus = await most_shown(world, 10, min_units=20)
    hashes = await world.content_hashes()
    events: list[Event] = [
        stock(sku, "store-001", world.product(sku).locations["store-001"] + delta, v)
        for v, delta in enumerate((-1, 2, -3, 1, 0), start=1)
        for sku in skus
    ]
    report = await world.pipeline().process(records(events))
    assert (report.applied, report.duplicates, report.stale) == (len(events), 0, 0)
    assert (report.recomputed, report.changed, report.purges_enqueued) == (0, [], 0)
    assert report.dead_letters == []
    assert await world.queued_tags(PURGER) == {}
    assert await world.content_hashes() == hashes
    assert await world.consistency_problems() == []


async def test_count_only_noise_is_purged_when_suppression_is_off(world: World) -> None:
    skus = await most_shown(world, 3, min_units=20)
    shown = await showing(world)
    events: list[Event] = [stock(sku, "store-001", 19, 1) for sku in skus]
    report = await world.pipeline(suppress_unchanged=False).process(records(events))
    expected = {bundle_tag(k) for sku in skus for k in shown[sku]}
    assert report.changed == []
    assert set(await world.queued_tags(PURGER)) == expected
    assert report.purges_enqueued >= len(expected)


async def test_sell_out_removes_the_sku_everywhere_and_purges_first(world: World) -> None:
    [sku] = await most_shown(world, 1)
    before = (await showing(world))[sku]
    assert len(before) > 10
    report = await world.pipeline().process(records(sell_out(world, sku, 1)))
    assert report.sold_out_skus == {sku}
    assert set(report.changed) == before
    assert len(report.changed) == len(before)
    assert report.purges_enqueued == len(before)
    assert sku not in await showing(world)
    queued = await world.queued_tags(PURGER)
    assert set(queued) == {bundle_tag(k) for k in before}
    assert all(score < PURGE_PRIORITY_SPAN for score in queued.values()), "priority 0"
    for key in before:
        assert not await world.redis.hexists(keys.partition_index_key(key.partition), sku), (
            f"index still maps {sku} to {key.cache_key}"
        )
    assert await world.consistency_problems() == []


async def test_ordinary_changes_queue_behind_sell_outs(world: World) -> None:
    before = await showing(world)
    candidates = await most_shown(world, 60)
    sold, priced = next(
        (a, b) for a in candidates for b in candidates if before[a] and before[b] - before[a]
    )
    price = world.product(priced).price_cents + 1
    events: list[Event] = [
        PriceEvent("px", priced, price, "USD", 1, WHEN),
        *sell_out(world, sold, 1),
    ]
    await world.pipeline().process(records(events))
    queued = await world.queued_tags(PURGER)
    for key in before[sold]:
        assert queued[bundle_tag(key)] < PURGE_PRIORITY_SPAN, key.cache_key
    for key in before[priced] - before[sold]:
        assert queued[bundle_tag(key)] >= PURGE_PRIORITY_SPAN, key.cache_key
    most_urgent = sorted(queued, key=queued.__getitem__)[: len(before[sold])]
    assert set(most_urgent) == {bundle_tag(k) for k in before[sold]}


async def test_a_sell_out_applied_before_the_previous_window_propagates_still_purges_first(
    world: World,
) -> None:
    """Windows overlap: N+1 (a sell-out) is applied before N, which also touches the SKU (a
    redelivered stock event, so N rescores it), propagates. N sees the sell-out and takes the SKU
    out of its bundles; N+1 then finds it in none. Those purges must go first all the same."""
    [sku] = await most_shown(world, 1)
    shown_in = (await showing(world))[sku]
    noise = stock(sku, "store-001", world.product(sku).locations["store-001"] + 1, 1)
    pipeline = world.pipeline()
    await pipeline.process(records([noise]))
    assert await world.queued_tags(PURGER) == {}, "count-only noise purges nothing"
    window_n = await pipeline.apply_events(DecodedRecords.of(records([noise], first_offset=1)))
    window_next = await pipeline.apply_events(
        DecodedRecords.of(records(sell_out(world, sku, 10), first_offset=2))
    )
    first = await pipeline.propagate(window_n)
    assert first.duplicates == 1
    assert set(first.changed) == shown_in, "N already takes the sold-out SKU out"
    second = await pipeline.propagate(window_next)
    assert second.sold_out_skus == {sku}
    assert not second.changed
    queued = await world.queued_tags(PURGER)
    for key in shown_in:
        assert queued[bundle_tag(key)] < PURGE_PRIORITY_SPAN, key.cache_key
    assert await world.consistency_problems() == []


async def test_restock_brings_the_sku_back_where_it_ranks(world: World) -> None:
    [sku] = await most_shown(world, 1)
    before = (await showing(world))[sku]
    pipeline = world.pipeline()
    await pipeline.process(records(sell_out(world, sku, 1)))
    assert sku not in await showing(world)
    report = await pipeline.process(records([stock(sku, "store-001", 40, 10)], 10))
    assert report.sold_out_skus == set()
    current = list((await world.store.products(p.sku for p in world.products)).values())
    expected: set[FragmentKey] = set()
    for partition in world.recomputer.partitions.values():
        slot = world.recomputer.slots.slots[partition.slot]
        top = rank(current, partition.segment, slot.scoring, slot.candidates)
        if sku in {p.sku for p, _ in top}:
            expected.update(world.recomputer.keys_of(partition))
    assert (await showing(world))[sku] == expected
    assert expected == before  # in stock again with the same score: back where it was
    assert set(report.changed) == expected
    assert await world.consistency_problems() == []


async def test_price_change_shows_the_new_price_on_every_card(world: World) -> None:
    [sku] = await most_shown(world, 1)
    product = world.product(sku)
    new_price = product.price_cents - 1
    event = PriceEvent("p-new", sku, new_price, "USD", 1, WHEN)
    report = await world.pipeline().process(records([event]))
    assert report.changed
    shown_in = 0
    for key in world.recomputer.all_keys():
        raw = await world.store.get_envelope(key)
        assert raw is not None
        for candidate in decode_bundle(open_envelope(raw).body).candidates:
            if candidate.sku != sku:
                continue
            shown_in += 1
            assert candidate.price_cents == new_price
            text = format_money(new_price, "USD", key.locale)  # no HTML-special characters
            assert text in candidate.card_html, (key.cache_key, candidate.card_html)
    assert shown_in == len(report.changed)
    assert await world.consistency_problems() == []


async def test_a_price_move_across_a_band_edge_reranks_the_sku(world: World) -> None:
    """Out of the bargain hunters' band (0-3,000 cents): the SKU falls in their lists."""
    bargain = world.recomputer.segments["bargain-hunters"]
    [sku] = [
        s for s in await most_shown(world, 200)
        if world.product(s).price_cents <= 2_000 and world.product(s).stock > 10
    ][:1]  # fmt: skip
    assert price_change_moves_scores(world.product(sku).price_cents, 3_001, [bargain])
    event = PriceEvent("p-dear", sku, 3_001, "USD", 1, WHEN)
    await world.pipeline().process(records([event]))
    assert await world.consistency_problems() == []


async def test_a_price_move_inside_every_band_leaves_every_list_as_it_was(world: World) -> None:
    [sku] = await most_shown(world, 1)
    product = world.product(sku)
    lists = {
        pid: await world.redis.zrange(keys.segment_list_key(pid), 0, -1, withscores=True)
        for pid in world.recomputer.partitions
    }
    segments = world.recomputer.segments.values()
    assert not price_change_moves_scores(product.price_cents, product.price_cents + 1, segments)
    event = PriceEvent("p-near", sku, product.price_cents + 1, "USD", 1, WHEN)
    report = await world.pipeline().process(records([event]))
    assert report.changed, "its cards show the new price"
    for pid, before in lists.items():
        after = await world.redis.zrange(keys.segment_list_key(pid), 0, -1, withscores=True)
        assert after == before, pid
    assert await world.consistency_problems() == []


async def test_many_events_in_one_batch_recompute_each_bundle_once(world: World) -> None:
    skus = await most_shown(world, 20)
    events: list[Event] = []
    version = 0
    for round_ in range(5):
        for sku in skus:
            version += 1
            events += sell_out(world, sku, version * 10)
            events.append(stock(sku, "store-001", 30 + round_, version * 10 + 5))
            price = world.product(sku).price_cents + round_ + 1
            events.append(PriceEvent(f"p{version}", sku, price, "USD", version, WHEN))
    report = await world.pipeline().process(records(events))
    bundles = len(world.recomputer.all_keys())
    assert report.applied == len(events)
    assert 0 < report.recomputed <= bundles
    assert len(report.changed) == len(set(report.changed))
    generations = await queue_generations(world)
    assert set(generations) == {bundle_tag(k) for k in report.changed}
    assert set(generations.values()) == {1}, "each bundle tag enqueued exactly once"
    assert len(await world.queued_tags(PURGER)) == len(report.changed)
    assert await world.consistency_problems() == []


async def test_each_purger_gets_its_own_queue_entry(world: World) -> None:
    [sku] = await most_shown(world, 1)
    report = await world.pipeline(("local-edge", "cloudflare")).process(
        records(sell_out(world, sku, 1))
    )
    assert report.purges_enqueued == 2 * len(report.changed)
    tags = {bundle_tag(k) for k in report.changed}
    assert set(await world.queued_tags("local-edge")) == tags
    assert set(await world.queued_tags("cloudflare")) == tags


async def test_redelivery_after_a_crash_between_apply_and_recompute_repairs_bundles(
    world: World, redis_client: RedisLike
) -> None:
    """A consumer that died after applying but before recomputing gets the events again:
    they are duplicates now, and the pipeline reconciles their SKUs' bundles."""
    [sku] = await most_shown(world, 1)
    before = (await showing(world))[sku]
    events = sell_out(world, sku, 1)
    await EventApplier(redis_client).apply(events)  # the crashed first delivery
    assert (await showing(world))[sku] == before  # bundles are stale now
    report = await world.pipeline().process(records(events))
    assert report.duplicates == len(events)
    assert report.applied == 0
    assert set(report.changed) == before
    assert sku not in await showing(world)
    assert set(await world.queued_tags(PURGER)) == {bundle_tag(k) for k in before}
    assert await world.consistency_problems() == []


async def test_bad_records_become_dead_letters_without_blocking_the_batch(world: World) -> None:
    [sku] = await most_shown(world, 1)
    good = sell_out(world, sku, 1)
    unknown = InventoryEvent("u-1", "NOT-A-SKU", "store-001", 0, 1, WHEN)
    batch = records([unknown, *good])
    malformed = record_of(good[0], 99)
    malformed = type(malformed)(malformed.topic, 0, 99, b"k", b"{not json", malformed.timestamp_ms)
    report = await world.pipeline().process([malformed, *batch])
    reasons = sorted(d.reason for d in report.dead_letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("not JSON")
    assert "unknown sku 'NOT-A-SKU'" in reasons[1]
    assert report.applied == len(good)
    assert sku not in await showing(world)


async def test_replaying_an_applied_batch_changes_nothing(world: World) -> None:
    [sku, other] = await most_shown(world, 2)
    price = PriceEvent("p1", other, world.product(other).price_cents + 7, "USD", 1, WHEN)
    batch = records([*sell_out(world, sku, 1), price])
    pipeline = world.pipeline()
    first = await pipeline.process(batch)
    assert first.changed
    await world.redis.delete(
        *[keys.purge_queue_key(p, PURGER) for p in world.recomputer.partitions]
    )
    hashes = await world.content_hashes()
    again = await pipeline.process(batch)
    assert (again.applied, again.duplicates) == (0, len(batch))
    assert (again.changed, again.purges_enqueued) == ([], 0)
    assert await world.queued_tags(PURGER) == {}
    assert await world.content_hashes() == hashes
