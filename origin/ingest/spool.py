"""A local spool of validated feed items: an import stages the whole feed here first.

Frames of msgpack on a temporary file, so staging a 200,000-item feed costs disk, not memory,
and nothing is applied before every item has been read and judged. A frame is a batch of up to
`BATCH` items with its length before it: one encode and one write a batch, not an item.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

import msgspec

from origin.ingest.feed_fields import FeedItem

BATCH = 500
"""Items encoded and written at a time."""
_LENGTH = struct.Struct(">I")
_Frame = tuple[FeedItem, bytes]
encode_batch = msgspec.msgpack.Encoder().encode
"""A batch of (item, fingerprint) pairs as the spool stores it (a worker process that judged
the items encodes them; `ItemSpool.write` stores the bytes)."""


class ItemSpool:
    """Add (item, fingerprint) pairs, then read them back in chunks, in order."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="shelfedge-import-")  # noqa: SIM115 - closed by close()
        self._decoder = msgspec.msgpack.Decoder(list[_Frame])
        self.count = 0

    def extend(self, frames: Sequence[_Frame]) -> None:
        batches = [encode_batch(frames[at : at + BATCH]) for at in range(0, len(frames), BATCH)]
        self.write(batches, len(frames))

    def write(self, batches: Iterable[bytes], count: int) -> None:
        """Append batches made by `encode_batch`, holding `count` pairs in all."""
        for payload in batches:
            self._file.write(_LENGTH.pack(len(payload)))
            self._file.write(payload)
        self.count += count

    def chunks(self, size: int) -> Iterator[list[_Frame]]:
        self._file.flush()
        self._file.seek(0)
        chunk: list[_Frame] = []
        while header := self._file.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            chunk += self._decoder.decode(self._file.read(length))
            while len(chunk) >= size:
                yield chunk[:size]
                del chunk[:size]
        if chunk:
            yield chunk

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ItemSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
