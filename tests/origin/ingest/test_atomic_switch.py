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

from origin.ingest import catalog_import
from origin.ingest.errors import FeedUnreadable
from origin.ingest.synthetic_feed import synthetic_items, tsv_lines
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
