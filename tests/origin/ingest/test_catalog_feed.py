"""The feed readers: positions, unreadable rows, hostile XML, and memory that does not grow with
the feed's size."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import time
import tracemalloc
from collections.abc import Iterator
from itertools import islice

import pytest
from xxhash import xxh3_128_digest

from origin.ingest import catalog_feed, feed_lines
from origin.ingest.catalog_feed import (
    CountingReader,
    FeedFormat,
    RawItem,
    detect_format,
    read_chunks,
    read_items,
)
from origin.ingest.errors import FeedUnreadable
from origin.ingest.feed_lines import MAX_LINE_BYTES
from origin.ingest.synthetic_feed import jsonl_lines, rss_chunks, synthetic_items, tsv_lines

CONTEXT = b"test|USD"


class LazyFeed(io.RawIOBase):
    """A feed generated while it is read: its bytes never exist all at once."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self.chunks = chunks
        self.pending = b""
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self.pending:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.pending = chunk.encode()
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        self.produced += n
        return n


def items(data: bytes | io.RawIOBase, fmt: FeedFormat | None = None) -> list[RawItem]:
    stream = io.BufferedReader(data if isinstance(data, io.RawIOBase) else io.BytesIO(data))
    return list(read_items(stream, fmt or detect_format(stream), CONTEXT))


def test_formats_are_detected_from_the_first_character() -> None:
    for text, fmt in (("\ufeff<?xml?><rss/>", "xml"), ('\n{"id": 1}', "jsonl"), ("id\t", "tsv")):
        assert detect_format(io.BufferedReader(io.BytesIO(text.encode()))) == fmt


def test_tsv_items_carry_their_line_and_a_stable_fingerprint() -> None:
    text = "".join(tsv_lines(synthetic_items(3)))
    first, again = items(text.encode()), items(text.encode())
    assert [i.position for i in first] == [2, 3, 4]
    assert [i.sku for i in first] == ["FEED-000000", "FEED-000001", "FEED-000002"]
    assert [i.digest for i in first] == [i.digest for i in again]
    assert len({i.digest for i in first}) == 3


def test_a_row_with_more_columns_than_the_header_is_rejected_with_its_line() -> None:
    text = "id\ttitle\nA-1\tOne\nA-2\tTwo\textra\n\nA-3\tThree\n"
    got = items(text.encode())
    assert [(i.position, i.sku, i.error) for i in got][1] == (
        3, "A-2", ("row", "3 columns, the header names 2 (a tab inside a value?)"),
    )  # fmt: skip
    assert got[2].position == 5  # blank line 4 skipped, numbering kept


def test_a_tsv_without_an_id_column_is_unreadable() -> None:
    with pytest.raises(FeedUnreadable, match="no 'id' column"):
        items(b"title\tprice\nx\ty\n")


def test_jsonl_bad_lines_are_rejected_with_their_line() -> None:
    text = (
        '{"id": "A-1"}\nnot json\n[1, 2]\n'
        + "{"
        + '"x":"'
        + "a" * MAX_LINE_BYTES
        + '"}\n{"id": 7}\n'
    )
    got = items(text.encode())
    assert got[0].error is None
    assert got[1].position == 2
    assert got[1].error is not None
    assert got[1].error[1].startswith("not JSON")
    assert got[2].error == ("line", "expected a JSON object, got list")
    assert got[3].error == ("line", f"longer than {MAX_LINE_BYTES} bytes")
    assert (got[4].position, got[4].sku) == (5, "7")


def test_rss_and_atom_items_are_read_with_their_index() -> None:
    rss = "".join(rss_chunks(synthetic_items(3)))
    got = items(rss.encode())
    assert [(i.position, i.sku) for i in got] == [
        (1, "FEED-000000"),
        (2, "FEED-000001"),
        (3, "FEED-000002"),
    ]
    assert got[0].fields["title"] == next(synthetic_items(1))["title"]
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:g="http://base.google.com/ns/1.0">'
        "<entry><g:id>AT-1</g:id><title>Atom &amp; co</title>"
        '<link href="https://shop.example/at-1"/><g:price>5.00 USD</g:price>'
        "<g:shipping><g:price>1.00 USD</g:price></g:shipping></entry></feed>"
    )
    (entry,) = items(atom.encode())
    assert entry.fields == {
        "id": "AT-1",
        "title": "Atom & co",
        "link": "https://shop.example/at-1",
        "price": "5.00 USD",
    }


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss xmlns:g="http://base.google.com/ns/1.0"><channel>
<item><g:id>X-1</g:id><title>&xxe;</title></item></channel></rss>"""

LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'.encode()
        for n in range(1, 10)
    )
    + b"]>\n<rss><channel><item><title>&lol9;</title></item></channel></rss>"
)


@pytest.mark.parametrize("hostile", [XXE, LAUGHS], ids=["external-entity", "billion-laughs"])
def test_hostile_xml_is_refused_before_any_entity_is_resolved(hostile: bytes) -> None:
    started = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(FeedUnreadable, match=r"XML refused.*DTDForbidden"):
            items(hostile)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert time.perf_counter() - started < 2.0


def test_malformed_xml_names_where() -> None:
    with pytest.raises(FeedUnreadable, match="not well-formed at line 2"):
        items(b"<rss><channel>\n<item><g:id>1</g:id></item></rss>")


def _peak_while_reading(chunks: Iterator[str]) -> tuple[int, int, int]:
    """(peak traced bytes while reading, items read, bytes the feed had)."""
    feed = LazyFeed(chunks)
    counting = CountingReader(feed)  # type: ignore[arg-type]
    stream = io.BufferedReader(counting)
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_items(stream, detect_format(stream), CONTEXT))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, count, counting.count


def _padded(count: int) -> Iterator[dict[str, str]]:
    """Items with 8 KB descriptions: many bytes per item, so bytes dominate the reading."""
    for item in synthetic_items(count):
        item["description"] += " padding" * 1_000
        yield item


@pytest.mark.parametrize("render", [tsv_lines, jsonl_lines, rss_chunks])
def test_reading_memory_does_not_grow_with_the_feed(render: object) -> None:
    """A 1 GB feed never loads into memory: the readers' peak is the same for a feed ten times
    larger (measured on 3 MB and 33 MB generated lazily, so the test stays quick)."""
    assert callable(render)
    small = _peak_while_reading(render(_padded(400)))
    large = _peak_while_reading(render(_padded(4_000)))
    assert large[1] == 4_000
    assert large[2] > 30_000_000
    assert large[2] > 9 * small[2]
    assert large[0] < small[0] * 1.5 + 200_000, (small, large)
    assert large[0] < 4_000_000


def test_tsv_rows_read_without_the_csv_module_equal_what_it_reads() -> None:
    """Unquoted lines are split by hand (the fast path), quoted ones go through ``csv``; either
    way the fields and the fingerprint are those of the csv module's row."""
    body = (
        "A-1\tPlain\tx\n"
        'A-2\t"Quoted\ttab"\ty\n'
        'A-3\tNew\t"say ""hi"""\n'
        "A-4\t  spaced  \t\n"
        "A-5\tShort\n"
    )
    feed = "id\ttitle\tdescription\n" + body
    items = list(read_items(io.BytesIO(feed.encode()), "tsv", b"ctx"))
    rows = list(csv.reader(io.StringIO(body), delimiter="\t", quotechar='"', strict=False))
    assert [i.sku for i in items] == ["A-1", "A-2", "A-3", "A-4", "A-5"]
    context = hashlib.blake2b(b"ctx|tsv|id\ttitle\tdescription", digest_size=8).digest()
    seed = int.from_bytes(context, "little")
    for item, row in zip(items, rows, strict=True):
        assert dict(item.fields.items()) == dict(
            zip(["id", "title", "description"], row, strict=False)
        )
        joined = "\t".join(row).encode()
        assert item.digest == xxh3_128_digest(joined, seed)


def _lines_by_readline(data: bytes, limit: int) -> list[tuple[int, bytes | None]]:
    """The reference: one readline per line, a line longer than `limit` read to its end."""
    stream, number = io.BytesIO(data), 0
    out: list[tuple[int, bytes | None]] = []
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(limit + 1)
            out.append((number, None))
            continue
        out.append((number, line.rstrip(b"\r\n")))
    return out


@pytest.mark.parametrize("block", [1, 3, 7, 16, 64])
def test_lines_read_in_blocks_are_the_lines_readline_reads(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines cut at every block boundary: short, exactly the limit, overlong (within a block
    and over several), CRLF ends, blank lines and a last line without its end."""
    limit = 8
    monkeypatch.setattr(feed_lines, "BLOCK_BYTES", block)
    monkeypatch.setattr(feed_lines, "MAX_LINE_BYTES", limit)
    rng = random.Random(block)
    for _ in range(200):
        parts = [
            rng.choice([b"", b"a", b"abcdefgh", b"abcdefghi", b"x" * 30, b"ab\r", b"\r"])
            for _ in range(rng.randint(0, 8))
        ]
        data = b"\n".join(parts) + rng.choice([b"", b"\n", b"\r\n"])
        expected = _lines_by_readline(data, limit)
        assert list(feed_lines.numbered(io.BytesIO(data))) == expected, data
        lines, runs = feed_lines.Lines(io.BytesIO(data)), []
        while run := lines.run(rng.randint(1, 4)):  # looked at, then taken in part
            taken = rng.randint(1, len(run))
            runs += [(lines.number + 1 + n, line) for n, line in enumerate(run[:taken])]
            lines.take(taken)
            runs += list(islice(lines, rng.randint(0, 2)))  # and one at a time between
        assert runs == expected, data


_MIXED_TSV = (
    "id\ttitle\tsale_price_effective_date\n"
    "A-1\tPlain\t\n"
    'A-2\t"Quoted\ttab"\t\n'
    "A-3\tToo\tmany\tcolumns\n"
    "\n"
    "\tNo id\t\n"
    'A-4\t"Over\ntwo lines"\t\n'
    "A-5\tLast\t\n"
)


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_tsv_chunks_hold_the_items_read_one_by_one(size: int) -> None:
    """By columns or whole, a chunk gives back exactly the items `read_items` reads: positions,
    ids, fingerprints, fields and errors, in feed order; none holds more than `size` items."""
    data = _MIXED_TSV.encode()
    one_by_one = items(data, "tsv")
    chunks = list(read_chunks(io.BytesIO(data), "tsv", CONTEXT, size))
    assert all(0 < len(chunk) <= size for chunk in chunks)
    again = [item for chunk in chunks for item in chunk.items()]
    assert [(i.position, i.sku, i.digest, i.error, dict(i.fields.items())) for i in again] == [
        (i.position, i.sku, i.digest, i.error, dict(i.fields.items())) for i in one_by_one
    ]
    assert [i.position for i in again] == [2, 3, 4, 6, 7, 9]
    assert sum(chunk.errors for chunk in chunks) == 1  # line 4's extra column
    for chunk in chunks:
        assert chunk.skus == [i.sku for i in chunk.items()]
        assert chunk.digests == [i.digest for i in chunk.items()]
        assert chunk.may_hold("sale_price_effective_date")
        assert not chunk.may_hold("gtin")


_ROWS = (
    "{id}\tPlain title\t\t9.99 USD",
    "{id}\tShort",
    "  {id}  \tSpaced id",
    "{id}\t\u00e9t\u00e9 \u2603\t\t1 EUR",
    '{id}\t"Quoted\ttab"\t\t',
    '{id}\t"Over\ntwo lines"\t\t',
    "{id}\tToo\tmany\tcolumns\there",
    "{id}\tStray\rreturn",
    "{id}\tCRLF end\r",
    "\tNo id",
    "   ",
    "",
    "{id}",
    "{id}\t" + "x" * 40,
)


@pytest.mark.parametrize("id_first", [True, False])
def test_tsv_runs_read_in_bulk_equal_the_rows_read_one_by_one(
    id_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of plain lines are taken in bulk; any other line on its own. Random feeds mixing
    plain rows with quoted, multi-line, CRLF, blank, id-less, overlong and too-wide rows, cut at
    small blocks, chunk sizes and byte budgets, must give the chunks (their lengths, and each
    item's position, id, fingerprint, error and fields) that reading every line on its own
    gives."""
    monkeypatch.setattr(feed_lines, "MAX_LINE_BYTES", 48)
    monkeypatch.setattr(catalog_feed, "CHUNK_BYTES", 200)
    header = "id\ttitle\tdescription\tprice" if id_first else "title\tid\tdescription\tprice"
    rng = random.Random(7 if id_first else 11)

    taken_in_bulk = 0
    take_plain = catalog_feed._TsvRows.take_plain

    def counted(*args: object) -> tuple[int, int]:
        nonlocal taken_in_bulk
        got = take_plain(*args)  # type: ignore[arg-type]
        taken_in_bulk += got[0]
        return got

    def read(data: bytes, size: int, bulk: bool) -> list[list[tuple[object, ...]]]:
        with monkeypatch.context() as patched:
            patched.setattr(
                catalog_feed._TsvRows, "take_plain", counted if bulk else lambda *_: (0, 0)
            )
            return [
                [(i.position, i.sku, i.digest, i.error, dict(i.fields.items())) for i in c.items()]
                for c in read_chunks(io.BytesIO(data), "tsv", CONTEXT, size)
            ]

    for _ in range(150):
        monkeypatch.setattr(feed_lines, "BLOCK_BYTES", rng.choice([7, 64, 300, 4096]))
        plain = rng.random() < 0.5  # mostly plain rows, or anything
        rows = [
            (_ROWS[0] if plain and rng.random() < 0.9 else rng.choice(_ROWS)).format(id=f"S-{k}")
            for k in range(rng.randint(0, 40))
        ]
        ending = rng.choice(["\n", "\r\n"])
        data = ending.join([header, *rows]).encode() + rng.choice([b"", ending.encode()])
        size = rng.choice([1, 3, 10, 1000])
        bulk = read(data, size, True)
        assert bulk == read(data, size, False), data
    assert taken_in_bulk > 500  # the bulk path was exercised
    feed = io.BytesIO(b"id\tt\nA\tok\nB\t\xff\n")  # taken in bulk, decoded when built
    (chunk,) = read_chunks(feed, "tsv", CONTEXT, 9)
    with pytest.raises(FeedUnreadable, match="line 3: not UTF-8"):
        list(chunk.items())


def test_a_tsv_chunk_ends_at_its_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long rows end a chunk before its row count: memory is bounded by bytes, not rows."""
    monkeypatch.setattr(catalog_feed, "CHUNK_BYTES", 10_000)
    feed = "id\ttitle\n" + "".join(f"A-{n}\t{'x' * 3000}\n" for n in range(10))
    chunks = list(read_chunks(io.BytesIO(feed.encode()), "tsv", CONTEXT, 1000))
    assert [len(c) for c in chunks] == [4, 4, 2]


@pytest.mark.parametrize("fmt", ["jsonl", "xml"])
def test_jsonl_and_xml_chunks_hold_the_items_read_one_by_one(fmt: FeedFormat) -> None:
    source = synthetic_items(7)
    data = (
        "".join(jsonl_lines(source)) if fmt == "jsonl" else "".join(rss_chunks(source))
    ).encode()
    data += b'{"title": "no id"}\n' if fmt == "jsonl" else b""
    one_by_one = items(data, fmt)
    chunks = list(read_chunks(io.BytesIO(data), fmt, CONTEXT, 3))
    assert [len(c) for c in chunks] == ([3, 3, 2] if fmt == "jsonl" else [3, 3, 1])
    again = [item for chunk in chunks for item in chunk.items()]
    assert again == one_by_one
    assert all(chunk.skus == [i.sku for i in chunk.items()] for chunk in chunks)
    assert chunks[0].may_hold("title")
    assert not chunks[0].may_hold("sale_price_effective_date")
