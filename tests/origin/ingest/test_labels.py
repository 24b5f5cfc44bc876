"""Custom labels in slot rules and experiment variants, end to end against the real Redis: a
feed's labels decide which products a slot's bundles show, and changing a label (by a feed
re-import or a catalog.v1 event) recomputes and purges exactly the bundles whose content changed.

The shop has two segment slots over the demo segments: ``summer-row`` shows only products whose
custom_label_1 is "summer" (with room for all of them), ``no-clearance`` never shows a product
whose custom_label_0 is "clearance". The synthetic feed labels odd items "summer", even ones
"winter", and every 17th "clearance".
"""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from fragments.ids import FragmentKey
from fragments.labels import parse_label_rule
from fragments.slots import parse_slots
from fragments.tags import bundle_tag
from invalidation.apply import EventApplier
from invalidation.events import CatalogEvent
from invalidation.pipeline import InvalidationPipeline
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.demo_catalog import demo_segments
from origin.core.recompute import Recomputer
from origin.core.store import Store
from origin.core.variants import BundleVariant
from origin.ingest.catalog_import import CatalogImporter
from origin.ingest.synthetic_feed import item_id
from tests.invalidation.support import WHEN, record_of
from tests.origin.ingest.support import PURGER, Shop, tsv

N = 120
SLOTS = """
locales = ["en-US"]
{slot}
"""
SLOT = """
[slots.{id}]
title = "{id}"
wrapper = "row_wrapper.html.j2"
card = "card_compact.html.j2"
candidates = {candidates}
shown = 4
{rule}
[slots.{id}.policy]
max_age = 30
stale_while_revalidate = 60
stale_if_error = 600
"""
SUMMER = 'include_labels = {custom_label_1 = ["Summer"]}'
NO_CLEARANCE = 'exclude_labels = {custom_label_0 = ["clearance"]}'


def slot_text() -> str:
    return SLOTS.format(
        slot=SLOT.format(id="summer-row", candidates=100, rule=SUMMER)
        + SLOT.format(id="no-clearance", candidates=100, rule=NO_CLEARANCE)
    )


@pytest.fixture
async def shop(redis_client: Redis) -> Shop:
    store = Store(redis_client, 5.0)
    segments = demo_segments()
    await store.load_catalog([], segments)
    builder = BundleBuilder(parse_slots(slot_text(), "labels-test.toml"))
    recomputer = Recomputer(store, builder, segments, variants=())
    return Shop(redis_client, store, recomputer, CatalogImporter(store, recomputer, [PURGER]))


def summer(index: int) -> bool:
    return index % 2 == 1


def in_stock(index: int) -> bool:
    return index % 6 != 4  # the synthetic feed's out_of_stock items


def relabelled(text: str, index: int, label_1: str) -> str:
    """The feed with item `index`'s custom_label_1 (the last column) set to `label_1`."""
    lines = text.splitlines(keepends=True)
    line = lines[index + 1]  # after the header
    lines[index + 1] = line.rsplit("\t", 1)[0] + "\t" + label_1 + "\n"
    return "".join(lines)


def of_slot(shown: dict[FragmentKey, set[str]], slot: str) -> dict[FragmentKey, set[str]]:
    return {k: v for k, v in shown.items() if k.slot == slot}


async def test_a_slot_shows_only_included_labels_and_never_excluded_ones(shop: Shop) -> None:
    report = await shop.load(tsv(N))
    assert report.created == N
    shown = await shop.shown()
    summer_skus = {item_id(i) for i in range(N) if summer(i) and in_stock(i)}
    rows = of_slot(shown, "summer-row")
    assert len(rows) == len(demo_segments())
    for key, skus in rows.items():
        assert skus == summer_skus, key  # every summer product (room for all), nothing else
    clearance = {item_id(i) for i in range(N) if i % 17 == 0}
    for key, skus in of_slot(shown, "no-clearance").items():
        assert skus, key
        assert not skus & clearance, key
        assert skus & {item_id(i) for i in range(N) if not summer(i)}  # no include rule here
    listed: list[Any] = await shop.redis.zrange(
        keys.segment_list_key("summer-row/bargain-hunters"), 0, -1
    )
    assert {s.decode() for s in listed} == summer_skus  # the ranked list itself holds only them


async def test_a_label_changed_by_a_reimport_purges_exactly_the_bundles_it_changes(
    shop: Shop,
) -> None:
    feed = tsv(N)
    await shop.load(feed)
    await shop.queued_tags()
    before = await shop.shown()
    winter_item = next(i for i in range(N) if not summer(i) and in_stock(i) and i % 17)
    sku = item_id(winter_item)
    report = await shop.load(relabelled(feed, winter_item, "summer"))
    assert (report.changed, report.unchanged) == (1, N - 1)
    after = await shop.shown()
    for key, skus in of_slot(after, "summer-row").items():
        assert skus == before[key] | {sku}, key  # it joined every summer row
    changed = {key for key in after if after[key] != before[key]}
    assert changed == set(of_slot(after, "summer-row"))  # the other slot shows the same
    assert await shop.queued_tags() == {bundle_tag(k) for k in changed}
    # and back: it leaves every summer row, and only those bundles are purged again
    await shop.load(feed)
    assert await shop.shown() == before
    assert await shop.queued_tags() == {bundle_tag(k) for k in changed}


async def test_a_label_changed_by_a_catalog_event_purges_exactly_the_bundles_it_changes(
    shop: Shop,
) -> None:
    await shop.load(tsv(N))
    await shop.queued_tags()
    before = await shop.shown()
    summer_item = next(i for i in range(N) if summer(i) and in_stock(i) and i % 17)
    sku = item_id(summer_item)
    pipeline = InvalidationPipeline(EventApplier(shop.redis), shop.recomputer, [PURGER])
    event = CatalogEvent("relabel-1", sku, 1, WHEN, labels=["clearance", "winter"])
    report = await pipeline.process([record_of(event, 0)])
    assert report.applied == 1
    after = await shop.shown()
    changed = {key for key in after if after[key] != before[key]}
    assert changed == set(after)  # out of every summer row, and now a clearance item
    for key, skus in after.items():
        assert skus == before[key] - {sku}, key
    assert set(report.changed) == changed
    assert await shop.queued_tags() == {bundle_tag(k) for k in changed}
    product = await shop.store.product(sku)
    assert product is not None
    assert product.labels[:2] == ("clearance", "winter")


async def test_an_experiment_variant_overrides_the_slot_label_rule(shop: Shop) -> None:
    await shop.load(tsv(N))
    only_winter = parse_label_rule({"custom_label_1": ["winter"]}, None, None)
    variant = BundleVariant("winter", frozenset({"summer-row"}), labels=only_winter)
    recomputer = Recomputer(
        shop.store, shop.recomputer.builder, list(shop.recomputer.segments.values()), [variant]
    )
    results = await recomputer.prepare([variant])
    assert results
    winter_skus = {item_id(i) for i in range(N) if not summer(i) and in_stock(i)}
    for result in results:
        assert result.key.variant == "winter"
        assert result.key.slot == "summer-row"
        assert set(result.bundle.skus) == winter_skus
    control = of_slot(await shop.shown(), "summer-row")
    assert all(not skus & winter_skus for skus in control.values())  # control keeps its rule
