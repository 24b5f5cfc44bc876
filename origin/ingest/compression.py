"""Compressed feeds: gzip, bzip2 or a one-file zip, recognised by their first bytes and read as
a stream of the feed inside.

Merchant Center takes feed files compressed with gzip, bzip2 or zip, and retailers host and send
them so (``products.xml.gz``); an import reads the same file it would upload there. The format
comes from the magic bytes, never from a file name or a header a caller may get wrong, so a
local file, a URL and a request body are treated alike. Decompression streams (gzip and bzip2 a
block at a time; a zip member through `zipfile`, which needs the seekable spool every import
reads from) and stops at `MAX_EXPANDED_BYTES` of output: a small hostile file that expands
without end (a compression bomb) is refused with `FeedUnreadable`, as is a corrupt or truncated
one, naming the compression. Pure stdlib; no I/O beyond the stream it is given.
"""

from __future__ import annotations

import bz2
import gzip
import io
import zipfile
import zlib
from typing import Any, Literal, Protocol

from origin.ingest.errors import FeedUnreadable

Compression = Literal["gzip", "bzip2", "zip"]
MAX_EXPANDED_BYTES = 64 * 1024**3
"""A compressed feed may expand to at most this much (a 200,000-item feed is about 50 MB)."""
_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"PK\x03\x04", "zip"),
)
_BROKEN = (OSError, EOFError, zlib.error, zipfile.BadZipFile, ValueError)
"""What the decompressors raise for a corrupt, truncated or unsupported stream."""


class _Source(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def compression_of(stream: io.BufferedReader[Any]) -> Compression | None:
    """The compression of the stream from its first bytes (peeked, not consumed), or None."""
    head = stream.peek(4)[:4]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def decompressed(
    stream: io.BufferedReader[Any], *, limit: int = MAX_EXPANDED_BYTES
) -> tuple[io.BufferedReader[Any], Compression | None]:
    """The feed inside `stream` (`stream` itself when it is not compressed), and its
    compression. A zip must hold exactly one file (directories aside)."""
    kind = compression_of(stream)
    if kind is None:
        return stream, None
    inner: _Source
    try:
        if kind == "gzip":
            inner = gzip.GzipFile(fileobj=stream, mode="rb")
        elif kind == "bzip2":
            inner = bz2.BZ2File(stream, mode="rb")
        else:
            inner = _zip_member(stream)
    except _BROKEN as exc:
        raise FeedUnreadable(f"the {kind} feed cannot be opened: {exc}") from exc
    return io.BufferedReader(_Expanded(inner, kind, limit), buffer_size=1 << 16), kind


def _zip_member(stream: io.BufferedReader[Any]) -> _Source:
    archive = zipfile.ZipFile(stream)
    files = [info for info in archive.infolist() if not info.is_dir()]
    if len(files) != 1:
        names = ", ".join(info.filename for info in files[:5]) or "none"
        raise FeedUnreadable(
            f"the zip feed holds {len(files)} files ({names}); a zip feed holds exactly one"
        )
    return archive.open(files[0])


class _Expanded(io.RawIOBase):
    """The decompressed bytes, counted against the limit; decompression errors become
    `FeedUnreadable` naming the compression."""

    def __init__(self, inner: _Source, kind: Compression, limit: int) -> None:
        self._inner = inner
        self._kind = kind
        self._limit = limit
        self.expanded = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except _BROKEN as exc:
            raise FeedUnreadable(
                f"the {self._kind} feed is corrupt or truncated after {self.expanded} bytes "
                f"of feed: {exc}"
            ) from exc
        n = len(data)
        self.expanded += n
        if self.expanded > self._limit:
            raise FeedUnreadable(
                f"the {self._kind} feed expands to more than {self._limit} bytes "
                "(a compression bomb, or a feed larger than an import takes)"
            )
        buffer[:n] = data
        return n

    def close(self) -> None:
        self._inner.close()
        super().close()
