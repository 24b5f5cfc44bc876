"""The switch is atomic per bundle: a concurrent reader never sees a bundle showing part of a
feed, and an aborted or refused import changes nothing it can see.

The import is made of many apply chunks (the chunk size is lowered), and a reader polls every
bundle for the whole import: each bundle it reads shows only old titles or only new ones.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from origin.core import keys
from origin.ingest import catalog_import
from origin.ingest.errors import FeedUnreadable
from origin.ingest.feed_fields import FeedItem
from origin.ingest.synthetic_feed import item_id, synthetic_items, tsv_lines
from tests.origin.ingest.support import make_shop, tsv

N = 600
_TITLE = re.compile(r'class="se-card__title">([^<]*)<')


def renamed(count: int) -> str:
    def items() -> Iterator[dict[str, str]]:
        for item in synthetic_items(count):
            item["title"] += " v2"
            yield item

    return "".join(tsv_lines(items()))


async def test_a_concurrent_reader_never_sees_a_bundle_with_part_of_a_feed(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await make_shop(redis_client)
    await shop.load(tsv(N))
    monkeypatch.setattr(catalog_import, "APPLY_CHUNK", 40)  # 15 apply chunks
    keys = shop.recomputer.all_keys()
    done = asyncio.Event()
    reads = mixed = 0
    seen_states: set[str] = set()

    async def reader() -> None:
        nonlocal reads, mixed
        while not done.is_set():
            for key in keys:
                bundle = await shop.bundle(key)
                titles = [m for c in bundle.candidates for m in _TITLE.findall(c.card_html)]
                assert len(titles) == len(bundle.candidates)
                new = {t.endswith(" v2") for t in titles}
                reads += 1
                mixed += len(new) > 1
                seen_states.add("new" if new == {True} else "old")
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    report = await shop.load(renamed(N))
    done.set()
    await task
    assert report.changed == N
    assert reads > len(keys)
    assert mixed == 0
    assert "old" in seen_states  # the reader did watch the switch
    final = [await shop.bundle(k) for k in keys]
    assert all(_TITLE.findall(c.card_html)[0].endswith(" v2") for b in final for c in b.candidates)


async def test_hostile_xml_changes_nothing(redis_client: Redis) -> None:
    shop = await make_shop(redis_client)
    await shop.load(tsv(50))
    before = await shop.shown()
    await shop.queued_tags()
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>&b;</g:id></item>'
        b"</channel></rss>"
    )
    with pytest.raises(FeedUnreadable, match="DTDForbidden"):
        await shop.load(bomb)
    assert await shop.shown() == before
    assert len(await shop.store.all_skus()) == 50
    assert await shop.queued_tags() == set()


async def test_an_import_that_crashes_after_applying_is_finished_by_the_next(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash between apply and the bundle writes: shoppers still see the old feed, and the next
    import (even of a feed with nothing new, whose items are all fingerprint-unchanged)
    recomputes the bundles of the SKUs the crashed one applied."""
    shop = await make_shop(redis_client)
    await shop.load(tsv(N))
    before = await shop.shown()

    async def crash(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("the importer died here")

    with monkeypatch.context() as patched:
        patched.setattr(shop.recomputer, "recompute_many", crash)
        with pytest.raises(ConnectionResetError):
            await shop.load(renamed(N))
    assert await redis_client.scard(keys.CATALOG_IMPORT_PENDING_KEY) == N
    assert await shop.shown() == before
    titles = [
        t
        for k in before
        for c in (await shop.bundle(k)).candidates
        for t in _TITLE.findall(c.card_html)
    ]
    assert not any(t.endswith(" v2") for t in titles)  # the old feed, whole

    report = await shop.load(renamed(N))
    assert report.unchanged == N  # every row was applied already
    assert report.bundles_changed == len(shop.recomputer.all_keys())
    assert await redis_client.scard(keys.CATALOG_IMPORT_PENDING_KEY) == 0
    for key in shop.recomputer.all_keys():
        for card in (await shop.bundle(key)).candidates:
            assert _TITLE.findall(card.card_html)[0].endswith(" v2")


async def test_new_products_applied_by_a_crashed_import_are_indexed_by_the_next(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash between the apply script and the SKU index write: the next import (whose rows are
    all fingerprint-unchanged, so it applies nothing) indexes the products the crashed one
    created, and a later full feed without them removes them."""
    shop = await make_shop(redis_client)
    await shop.load(tsv(N))
    real_sadd = redis_client.sadd

    def no_index(key: str, *values: object) -> object:
        if key == keys.CATALOG_SKUS_KEY:
            raise ConnectionResetError("the importer died here")
        return real_sadd(key, *values)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(redis_client, "sadd", no_index)
        with pytest.raises(ConnectionResetError):
            await shop.load(tsv(N + 10))
    assert len(await shop.store.all_skus()) == N  # applied, not indexed
    assert await shop.store.product(item_id(N + 3)) is not None

    report = await shop.load(tsv(N + 10))
    assert (report.unchanged, report.created) == (N + 10, 0)
    assert len(await shop.store.all_skus()) == N + 10
    report = await shop.load(tsv(N))
    assert report.removed == 10
    assert await shop.store.product(item_id(N + 3)) is None


async def test_an_apply_chunk_that_fails_while_others_are_in_flight_fails_the_import_cleanly(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several apply chunks are in Redis at once: when two of them fail, the import raises the
    first failure in feed order, sends no later chunk, writes no bundle, and the next import
    finishes what the failed one left (its pending SKUs)."""
    shop = await make_shop(redis_client)
    await shop.load(tsv(N))
    before = await shop.shown()
    monkeypatch.setattr(catalog_import, "APPLY_CHUNK", 40)  # 15 apply chunks
    real_apply = shop.importer.applier.apply
    failing = {item_id(80): (3, 0.02), item_id(120): (4, 0.01)}  # chunk 4 fails first
    calls = 0

    async def flaky(frames: list[tuple[FeedItem, bytes]], *args: object) -> object:
        nonlocal calls
        calls += 1
        if frames[0][0].sku in failing:
            chunk, delay = failing[frames[0][0].sku]
            await asyncio.sleep(delay)
            raise ConnectionResetError(f"chunk {chunk}: the connection was reset")
        return await real_apply(frames, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(shop.importer.applier, "apply", flaky)
        with pytest.raises(ConnectionResetError, match=r"^chunk 3"):  # the first in feed order
            await shop.load(renamed(N))
    assert calls <= 3 + catalog_import.APPLY_AHEAD  # no chunk was sent after the failure
    assert await shop.shown() == before  # no bundle was written
    assert await redis_client.scard(keys.CATALOG_IMPORT_PENDING_KEY) > 0

    report = await shop.load(renamed(N))
    assert report.changed + report.unchanged == N
    assert await redis_client.scard(keys.CATALOG_IMPORT_PENDING_KEY) == 0
    for key in shop.recomputer.all_keys():
        for card in (await shop.bundle(key)).candidates:
            assert _TITLE.findall(card.card_html)[0].endswith(" v2")
