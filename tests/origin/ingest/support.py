"""Helpers of the import tests: an importer over the real Redis, feeds as bytes, purge reads."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from fragments.bundle import Bundle, decode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from origin.core import keys
from origin.core.builder import BundleBuilder
from origin.core.demo_catalog import demo_segments
from origin.core.envelope import open_envelope
from origin.core.recompute import Recomputer
from origin.core.redis_text import as_text
from origin.core.store import Store
from origin.ingest.catalog_import import CatalogImporter
from origin.ingest.report import ImportMode, ImportReport
from origin.ingest.synthetic_feed import synthetic_items, tsv_lines

PURGER = "local-edge"


@dataclass
class Shop:
    redis: Redis
    store: Store
    recomputer: Recomputer
    importer: CatalogImporter

    async def load(
        self, text: str | bytes, mode: ImportMode = "full", **kw: object
    ) -> ImportReport:
        data = text.encode() if isinstance(text, str) else text
        return await self.importer.run(io.BytesIO(data), source="test", mode=mode, **kw)  # type: ignore[arg-type]

    async def queued_tags(self) -> set[str]:
        """Every bundle tag waiting in a purge queue (then the queues are emptied)."""
        tags: set[str] = set()
        async for key in self.redis.scan_iter(match="se:*:purgeq:*"):
            members: list[Any] = await self.redis.zrange(key, 0, -1)
            tags.update(as_text(m) for m in members)
            await self.redis.delete(key)
        return tags

    async def bundle(self, key: FragmentKey) -> Bundle:
        raw = await self.store.get_envelope(key)
        assert raw is not None, key
        return decode_bundle(open_envelope(raw).body)

    async def shown(self) -> dict[FragmentKey, set[str]]:
        """SKUs shown by every stored bundle of the control variant."""
        out: dict[FragmentKey, set[str]] = {}
        for key in self.recomputer.all_keys():
            raw = await self.store.get_envelope(key)
            if raw is not None:
                out[key] = {c.sku for c in decode_bundle(open_envelope(raw).body).candidates}
        return out


async def make_shop(redis: Redis) -> Shop:
    store = Store(redis, 5.0)
    segments = demo_segments()
    await redis.set(keys.SEGMENTS_KEY, "[]")
    await store.load_catalog([], segments)
    recomputer = Recomputer(store, BundleBuilder(load_slots()), segments, variants=())
    return Shop(redis, store, recomputer, CatalogImporter(store, recomputer, [PURGER]))


def tsv(count: int, *, repriced: Iterable[int] = (), start: int = 0, extra: str = "") -> str:
    return "".join(tsv_lines(synthetic_items(count, repriced=set(repriced), start=start))) + extra


def tsv_with_rejects(count: int) -> str:
    """`tsv(count)` with a bad price on every 10th row (from the 4th) and, after every 15th row
    (from the 9th), a repeat of the row 8 before it: 1 + 1 rejections per 10 + 15 rows."""
    rows = tsv(count).splitlines()
    header, items = rows[0], rows[1:]
    price_at = header.split("\t").index("price")
    feed = [header]
    for n, row in enumerate(items):
        fields = row.split("\t")
        if n % 10 == 3:
            fields[price_at] = "free"
        feed.append("\t".join(fields))
        if n % 15 == 8:
            feed.append(items[n - 8])  # a repeat, rejected where it is read
    return "\n".join(feed) + "\n"


def lines(text: str) -> Iterator[str]:
    yield from text.splitlines(keepends=True)
