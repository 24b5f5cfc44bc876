"""Read a product feed as a stream of raw items: TSV, RSS 2.0 / Atom XML, or JSON Lines.

Google Merchant Center's formats: tab-separated text with a header row; RSS 2.0 or Atom with
product fields in the ``g:`` namespace (http://base.google.com/ns/1.0); and JSON Lines with the
same field names. Every reader streams: TSV and JSON Lines one line at a time (a line is cut off
at `MAX_LINE_BYTES`, so one hostile line cannot fill memory), XML with ``iterparse`` removing
each item once read. Memory stays bounded whatever the feed's size.

XML goes through defusedxml with DTDs forbidden: no external entities, no entity expansion
(billion laughs), no network or file access from a feed.

Each raw item carries its position (line of TSV/JSON Lines, 1-based with the header as line 1;
1-based item index in XML) and a fingerprint of its raw content (XXH3-128, seeded by the parser
version, the catalog currency and, for TSV, the header), so an import can tell an item it
already applied without parsing it again. A fingerprint guards against accidental collisions
(128 bits), not a crafted feed: whoever writes the feed holds the ingest role anyway.
`read_chunks` gives the same items a chunk at a time, held by columns (`RawChunk`: an import
looks at most rows only by id and fingerprint). Never performs I/O beyond reading the stream it
is given.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import accumulate, islice, repeat
from operator import itemgetter, methodcaller
from typing import Any, BinaryIO, Literal, cast
from xml.etree.ElementTree import Element, ParseError

import msgspec
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from xxhash import xxh3_128_digest

from origin.ingest.errors import FeedUnreadable
from origin.ingest.feed_fields import field_name
from origin.ingest.feed_lines import MAX_LINE_BYTES, Lines, numbered

FeedFormat = Literal["tsv", "xml", "jsonl"]
GOOGLE_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
MAX_FIELD_CHARS = 100_000
_ITEMS_CHUNK = 64
"""Rows a TSV reader holds at a time for `read_items`."""
CHUNK_BYTES = 1 << 23
"""A TSV chunk ends at this many bytes of rows (or at its row count): bounded memory whatever
the rows' lengths."""
FINGERPRINT_BYTES = 16
"""Every fingerprint is this long (an XXH3-128 digest)."""
_TABS = methodcaller("count", b"\t")


class RawItem(msgspec.Struct, frozen=True):
    """One item as read, not yet validated (a Struct: a feed makes one per line)."""

    position: int
    """Line (TSV, JSON Lines) or 1-based item index (XML)."""
    sku: str
    """The item's id as given ("" when it has none)."""
    fields: Mapping[str, object]
    digest: bytes
    """Fingerprint of the raw item (see the module docstring)."""
    error: tuple[str, str] | None = None
    """(field, reason) when the item cannot even be read (bad JSON, too many columns)."""
    normalized: bool = False
    """The field names are spelled as `origin.ingest.feed_fields.field_name` spells them."""


class _Row(Mapping[str, object]):
    """A TSV row seen as field -> value without building a dict (most rows of a re-import are
    recognised by their fingerprint and never looked into); a row read without the csv module
    keeps its line and splits it on first use."""

    __slots__ = ("_header", "_line", "_values")

    def __init__(self, header: list[str], row: list[str] | None, line: str = "") -> None:
        self._header = header
        self._values = row
        self._line = line

    @property
    def columns(self) -> list[str]:
        """The header's field names (shared by every row of the feed)."""
        return self._header

    @property
    def _row(self) -> list[str]:
        if self._values is None:
            self._values = self._line.split("\t")
        return self._values

    def __getitem__(self, name: str) -> object:
        try:
            return self._row[self._header.index(name)]
        except (ValueError, IndexError):
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._header[: len(self._row)])

    def __len__(self) -> int:
        return min(len(self._header), len(self._row))

    def items(self) -> Iterator[tuple[str, object]]:  # type: ignore[override]
        return iter(zip(self._header, self._row, strict=False))


class RawChunk:
    """A run of raw items in feed order, held by columns: positions, ids and fingerprints as
    lists, so an import recognises unchanged rows without an object per row; `item` builds a
    row's `RawItem` when one is wanted (an item to validate).

    A TSV chunk keeps each plain row as its line of text; a row read otherwise (quoted, or not
    readable: `errors` counts those) and every JSON Lines or XML item is kept whole."""

    __slots__ = ("digests", "errors", "header", "positions", "rows", "skus", "whole")

    def __init__(self, header: list[str] | None = None) -> None:
        self.header = header
        """The TSV header (None for JSON Lines and XML)."""
        self.positions: list[int] = []
        self.skus: list[str] = []
        self.digests: list[bytes] = []
        self.rows: list[bytes] = []
        """A plain TSV row's line, undecoded (b"" for an item kept whole)."""
        self.whole: dict[int, RawItem] = {}
        """Index -> item, for the items kept whole."""
        self.errors = 0
        """Items that could not even be read (`RawItem.error`)."""

    @classmethod
    def of(cls, items: Iterable[RawItem]) -> RawChunk:
        """A chunk of items kept whole (JSON Lines, XML)."""
        chunk = cls()
        for item in items:
            chunk.add(item)
        return chunk

    def add(self, item: RawItem) -> None:
        """Append an item kept whole."""
        self.whole[len(self.positions)] = item
        self.positions.append(item.position)
        self.skus.append(item.sku)
        self.digests.append(item.digest)
        self.rows.append(b"")
        self.errors += item.error is not None

    def __len__(self) -> int:
        return len(self.positions)

    def item(self, index: int) -> RawItem:
        whole = self.whole.get(index)
        if whole is not None:
            return whole
        position = self.positions[index]
        row = _Row(self.header or [], None, _decode(position, self.rows[index]))
        return RawItem(position, self.skus[index], row, self.digests[index], normalized=True)

    def items(self) -> Iterator[RawItem]:
        return map(self.item, range(len(self.positions)))

    def subset(self, indices: Sequence[int]) -> RawChunk:
        """A chunk of the items at `indices` (ascending), in columns still: cheap to send to
        another process, where `items` builds the objects."""
        out = RawChunk(self.header)
        out.positions = [self.positions[at] for at in indices]
        out.skus = [self.skus[at] for at in indices]
        out.digests = [self.digests[at] for at in indices]
        out.rows = [self.rows[at] for at in indices]
        if self.whole:
            kept = ((new, self.whole.get(at)) for new, at in enumerate(indices))
            out.whole = {new: item for new, item in kept if item is not None}
            out.errors = sum(item.error is not None for item in out.whole.values())
        return out

    def may_hold(self, name: str) -> bool:
        """Whether an item of the chunk may give field `name` (see `may_hold`)."""
        if self.header is not None:
            return name in self.header
        return any(item.fields.get(name) for item in self.whole.values())


def may_hold(items: Sequence[RawItem], name: str) -> bool:
    """Whether an item of `items` may give field `name`: for TSV rows, whether their header
    names it (one look for the whole chunk: the rows share their header); for JSON Lines and
    XML items, whether one of them has it."""
    for raw in items:
        if isinstance(raw.fields, _Row):
            return name in raw.fields.columns
        if raw.fields.get(name):
            return True
    return False


class CountingReader(io.RawIOBase):
    """A binary stream that counts the bytes read through it (progress bars)."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        into = getattr(self.inner, "readinto", None)
        if into is not None:  # a file: straight into the buffer, no block allocated and copied
            n = into(buffer) or 0
        else:
            data = self.inner.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        self.count += n
        return n

    def seekable(self) -> bool:
        """As the inner stream (a zip feed is read from its end first)."""
        return self.inner.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()


def detect_format(stream: io.BufferedReader[Any]) -> FeedFormat:
    """The feed's format from its first non-blank character (``<`` XML, ``{`` JSON Lines,
    anything else TSV)."""
    head = stream.peek(4096)[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "xml"
    if head.startswith(b"{"):
        return "jsonl"
    return "tsv"


def read_items(stream: BinaryIO, fmt: FeedFormat, context: bytes) -> Iterator[RawItem]:
    """Raw items of a feed in `fmt`, in feed order. `context` keys the fingerprints."""
    if fmt == "tsv":
        chunks = _tsv(stream, context, _ITEMS_CHUNK, _ITEMS_CHUNK * 1024)
        return (item for chunk in chunks for item in chunk.items())
    if fmt == "jsonl":
        return _jsonl(stream, context)
    return _xml(stream, context)


def read_chunks(stream: BinaryIO, fmt: FeedFormat, context: bytes, size: int) -> Iterator[RawChunk]:
    """The items of `read_items` in chunks of `size` (the last one shorter; a TSV chunk also ends
    at `CHUNK_BYTES` of rows)."""
    if fmt == "tsv":
        return _tsv(stream, context, size, CHUNK_BYTES)
    return _chunked(read_items(stream, fmt, context), size)


def _chunked(items: Iterator[RawItem], size: int) -> Iterator[RawChunk]:
    while chunk := RawChunk.of(islice(items, size)):
        yield chunk


def _digest(payload: bytes, seed: int) -> bytes:
    return xxh3_128_digest(payload, seed)


def _seed(context: bytes) -> int:
    """The seed of a context's fingerprints (64 bits of its BLAKE2b hash)."""
    return int.from_bytes(hashlib.blake2b(context, digest_size=8).digest(), "little")


def _decode(number: int, line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FeedUnreadable(
            f"line {number}: not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from exc


def _tsv(stream: BinaryIO, context: bytes, size: int, max_bytes: int) -> Iterator[RawChunk]:
    lines = Lines(stream)
    rows = _TsvRows(_header(lines), context)
    chunk, held = RawChunk(rows.header), 0
    """`held`: bytes of the lines read into this chunk."""
    while True:
        if len(chunk) >= size or held >= max_bytes:
            yield chunk
            chunk, held = RawChunk(rows.header), 0
        run = lines.run(size - len(chunk))
        if not run:
            break
        count, size_of = rows.take_plain(run, lines.number + 1, chunk, max_bytes - held)
        if count:
            lines.take(count)
            held += size_of
            continue
        # Not all plain: this run's lines one at a time (a quoted row may read further on).
        end = lines.number + len(run)
        while lines.number < end and len(chunk) < size and held < max_bytes:
            held += rows.one(*next(lines), lines, chunk)
    if len(chunk):
        yield chunk


def _header(lines: Lines) -> list[str]:
    """The TSV header's field names, from its first non-blank line."""
    for number, raw in lines:
        if raw is None:
            raise FeedUnreadable(f"line {number}: the header row is longer than {MAX_LINE_BYTES}")
        text = _decode(number, raw).lstrip("\ufeff")
        if text.strip():
            header = [field_name(h) for h in text.split("\t")]
            if "id" in header:
                return header
            break
    raise FeedUnreadable(
        "line 1: the header row has no 'id' column (a TSV feed starts with a header row "
        "naming its columns: id, title, link, ...)"
    )


class _TsvRows:
    """Reads a TSV feed's rows into chunks: a run of plain lines in bulk (`take_plain`), any
    other line on its own (`one`).

    A row's fingerprint is that of its values joined by tabs: a plain line's is the line's own
    (no quoting), hashed in C a run at a time. A plain row keeps its line as bytes, decoded
    when its item is built (`RawChunk.item`): most rows of a re-import are recognised by id
    and fingerprint alone, and an unchanged line is one an earlier import read whole."""

    def __init__(self, header: list[str], context: bytes) -> None:
        self.header = header
        self.seed = _seed(context + b"|tsv|" + "\t".join(header).encode())
        self.id_at = header.index("id")
        self.width = len(header)
        self._split_to_id = methodcaller("split", b"\t", self.id_at + 1)
        self._pick_id = itemgetter(self.id_at)

    def take_plain(
        self, run: list[bytes | None], first: int, chunk: RawChunk, budget: int
    ) -> tuple[int, int]:
        """Add the lines of `run` (line `first` on) to `chunk` in bulk when every one is a plain
        row: readable, unquoted, no stray carriage return or NUL, no more columns than the
        header, a non-blank id. Lines are added while the bytes added stay under `budget`
        (at least one). (lines added, their bytes); (0, 0) when `run` is not all plain."""
        if None in run:
            return 0, 0
        lines = cast("list[bytes]", run)
        joined = b"\n".join(lines)
        if b'"' in joined or b"\r" in joined or b"\x00" in joined:
            return 0, 0
        if max(map(_TABS, lines)) >= self.width:
            return 0, 0
        try:
            ids = b"\n".join(map(self._pick_id, map(self._split_to_id, lines)))
            skus = list(map(str.strip, ids.decode().split("\n")))
        except (IndexError, UnicodeDecodeError):
            return 0, 0
        if not all(skus):
            return 0, 0
        count, size_of = len(lines), len(joined) - len(lines) + 1
        if size_of >= budget:  # the chunk ends within this run
            sizes = list(accumulate(map(len, lines)))
            count = bisect_left(sizes, budget) + 1
            del lines[count:], skus[count:]
            size_of = sizes[count - 1]
        chunk.positions += range(first, first + count)
        chunk.skus += skus
        chunk.digests += map(xxh3_128_digest, lines, repeat(self.seed))
        chunk.rows += lines
        return count, size_of

    def one(self, number: int, raw: bytes | None, lines: Lines, chunk: RawChunk) -> int:
        """Add line `number` to `chunk` (a quoted row may read further lines); its bytes."""
        if raw is None:
            chunk.add(
                RawItem(number, "", {}, b"", ("row", f"line longer than {MAX_LINE_BYTES} bytes"))
            )
            return 0
        text = _decode(number, raw)
        if '"' in text or "\r" in text or "\x00" in text:
            # Quotes (a value may span lines), stray carriage returns, NULs: the csv module.
            quoted = _quoted_row(number, text, lines, self.header, self.seed)
            if quoted is not None:
                chunk.add(quoted)
            return len(raw)
        if "\t" not in text and not text.strip():
            return len(raw)  # a blank line
        columns = text.count("\t") + 1
        head = text.split("\t", self.id_at + 1)
        sku = head[self.id_at].strip() if self.id_at < len(head) else ""
        if columns > self.width:
            reason = f"{columns} columns, the header names {self.width} (a tab inside a value?)"
            chunk.add(RawItem(number, sku, {}, b"", ("row", reason)))
            return len(raw)
        chunk.positions.append(number)
        chunk.skus.append(sku)
        chunk.digests.append(_digest(raw, self.seed))
        chunk.rows.append(raw)
        return len(raw)


def _quoted_row(
    number: int,
    text: str,
    lines: Iterator[tuple[int, bytes | None]],
    header: list[str],
    seed: int,
) -> RawItem | None:
    """One row read by the csv module from `text` on (a quoted value may go on over the next
    lines, read from `lines`); None for a row with nothing in it."""
    overlong: list[int] = []

    def more() -> Iterator[str]:
        yield text
        for later, raw in lines:
            if raw is None:
                overlong.append(later)
                yield ""
                continue
            yield _decode(later, raw)

    csv.field_size_limit(MAX_FIELD_CHARS)
    try:
        row = next(csv.reader(more(), delimiter="\t", quotechar='"', strict=False))
    except StopIteration:
        return None
    except csv.Error as exc:
        return RawItem(number, "", {}, b"", ("row", f"unreadable: {exc}"))
    if overlong:
        reason = f"line longer than {MAX_LINE_BYTES} bytes"
        return RawItem(overlong[0], "", {}, b"", ("row", reason))
    if not row or (len(row) == 1 and not row[0].strip()):
        return None
    id_at = header.index("id")
    sku = row[id_at].strip() if id_at < len(row) else ""
    if len(row) > len(header):
        reason = f"{len(row)} columns, the header names {len(header)} (a tab inside a value?)"
        return RawItem(number, sku, {}, b"", ("row", reason))
    digest = _digest("\t".join(row).encode(), seed)
    return RawItem(number, sku, _Row(header, row), digest, normalized=True)


def _jsonl(stream: BinaryIO, context: bytes) -> Iterator[RawItem]:
    seed = _seed(context + b"|jsonl")
    for number, raw in numbered(stream):
        if raw is None:
            yield RawItem(number, "", {}, b"", ("line", f"longer than {MAX_LINE_BYTES} bytes"))
            continue
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            yield RawItem(number, "", {}, b"", ("line", f"not JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            yield RawItem(number, "", {}, b"", ("line", f"expected a JSON object, got {kind}"))
            continue
        sku = value.get("id", value.get("g:id", ""))
        yield RawItem(number, sku if isinstance(sku, str) else str(sku), value, _digest(raw, seed))


_ITEM_TAGS = frozenset({"item", f"{{{ATOM_NS}}}entry"})
_PLAIN_FIELDS = {
    "title": "title", "link": "link", "description": "description",
    f"{{{ATOM_NS}}}title": "title", f"{{{ATOM_NS}}}link": "link",
    f"{{{ATOM_NS}}}summary": "description", f"{{{ATOM_NS}}}content": "description",
}  # fmt: skip
_G_PREFIX = f"{{{GOOGLE_NS}}}"


def _xml(stream: BinaryIO, context: bytes) -> Iterator[RawItem]:
    seed = _seed(context + b"|xml")
    index = 0
    parents: list[Element] = []
    events = iterparse(
        stream, events=("start", "end"), forbid_dtd=True, forbid_entities=True,
        forbid_external=True,
    )  # fmt: skip
    try:
        for event, element in events:
            if event == "start":
                parents.append(element)
                continue
            parents.pop()
            if element.tag not in _ITEM_TAGS:
                continue
            index += 1
            fields = _xml_fields(element)
            if parents:
                parents[-1].remove(element)  # bounded memory: the tree never keeps items
            element.clear()
            payload = json.dumps(sorted(fields.items()), ensure_ascii=False).encode()
            sku = fields.get("id", "")
            yield RawItem(index, sku, fields, _digest(payload, seed))
    except DefusedXmlException as exc:
        raise FeedUnreadable(
            f"XML refused (after item {index}): {type(exc).__name__}: {exc}"
        ) from exc
    except ParseError as exc:
        line, column = exc.position
        raise FeedUnreadable(
            f"XML not well-formed at line {line}, column {column} (after item {index}): {exc}"
        ) from exc


def _xml_fields(item: Element) -> dict[str, str]:
    """Field name -> text of one ``<item>``/``<entry>``: ``g:`` fields by their local name,
    RSS/Atom title, link and description where no ``g:`` field gives them; the first of a
    repeated field wins; nested elements (g:shipping) are skipped."""
    fields: dict[str, str] = {}
    plain: dict[str, str] = {}
    for child in item:
        tag = child.tag
        if not isinstance(tag, str) or len(child):
            continue
        if tag.startswith(_G_PREFIX):
            name = tag[len(_G_PREFIX) :]
            target = fields
        elif tag in _PLAIN_FIELDS:
            name = _PLAIN_FIELDS[tag]
            target = plain
        else:
            continue
        text = child.get("href") if name == "link" and child.get("href") else child.text
        target.setdefault(name, (text or "").strip()[:MAX_FIELD_CHARS])
    for name, value in plain.items():
        fields.setdefault(name, value)
    return fields
