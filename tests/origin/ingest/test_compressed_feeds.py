"""Compressed feeds (gzip, bzip2, a one-file zip) import as the feed inside them; a corrupt,
truncated, ambiguous or endlessly expanding one is refused by name and applies nothing."""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile

import pytest
from redis.asyncio import Redis

from origin.ingest.compression import compression_of, decompressed
from origin.ingest.errors import FeedUnreadable
from origin.ingest.synthetic_feed import rss_chunks, synthetic_items
from tests.origin.ingest.support import make_shop, tsv

N = 80


def zipped(*members: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out.getvalue()


def reader(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))


async def test_gzip_bzip2_and_zip_feeds_import_the_catalog_of_the_plain_feed(
    redis_client: Redis,
) -> None:
    plain = tsv(N).encode()
    shop = await make_shop(redis_client)
    await shop.load(plain)
    expected = await shop.shown()
    rss = "".join(rss_chunks(synthetic_items(N))).encode()
    for packed in (
        gzip.compress(plain),
        bz2.compress(plain),
        zipped(("products.tsv", plain)),
        gzip.compress(rss),  # the format inside is detected after decompression
    ):
        await redis_client.flushall()
        shop = await make_shop(redis_client)
        report = await shop.load(packed)
        assert (report.read, report.created, report.rejected) == (N, N, 0), report.rejections
        assert await shop.shown() == expected


async def test_a_truncated_gzip_feed_is_refused_and_applies_nothing(redis_client: Redis) -> None:
    shop = await make_shop(redis_client)
    packed = gzip.compress(tsv(N).encode())
    with pytest.raises(FeedUnreadable, match="gzip feed is corrupt or truncated"):
        await shop.load(packed[: len(packed) // 2])
    assert await shop.store.product("FEED-000001") is None


async def test_a_zip_feed_must_hold_exactly_one_file(redis_client: Redis) -> None:
    shop = await make_shop(redis_client)
    two = zipped(("a.tsv", tsv(3).encode()), ("b.tsv", tsv(3).encode()))
    with pytest.raises(FeedUnreadable, match=r"holds 2 files \(a.tsv, b.tsv\)"):
        await shop.load(two)


def test_a_compression_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))  # 8 MB of zeros in about 8 KB
    assert len(bomb) < 64 * 1024
    feed, kind = decompressed(reader(bomb), limit=1024 * 1024)
    assert kind == "gzip"
    with pytest.raises(FeedUnreadable, match="expands to more than 1048576 bytes"):
        _read_all(feed)


def _read_all(feed: io.BufferedReader) -> None:
    while feed.read(1 << 16):
        pass


def test_only_the_magic_bytes_decide() -> None:
    assert compression_of(reader(b"id\ttitle\n")) is None
    assert compression_of(reader(b"")) is None
    assert compression_of(reader(gzip.compress(b"x"))) == "gzip"
    assert compression_of(reader(bz2.compress(b"x"))) == "bzip2"
    assert compression_of(reader(zipped(("f", b"x")))) == "zip"
    plain = reader(b"PK but not a zip")
    feed, kind = decompressed(plain)
    assert (feed, kind) == (plain, None)
    assert feed.read() == b"PK but not a zip"  # peeked, not consumed
