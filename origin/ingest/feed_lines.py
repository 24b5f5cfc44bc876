"""The lines of a line-based feed (TSV, JSON Lines), read in blocks and split in C.

A feed has hundreds of thousands of lines, so they are split a block at a time (`BLOCK_BYTES`)
and handed on either one at a time (`Lines` as an iterator) or as a run of a block's lines at
once (`Lines.run`), which a reader can take in bulk when every line of the run is plain. At most
one block and `MAX_LINE_BYTES` are held, whatever the lines' lengths: a longer line is given as
None and skipped to its end unread. A line is given without its end (``\\n``, and a ``\\r``
before it). Never performs I/O beyond reading the stream it is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import methodcaller
from typing import BinaryIO, cast

MAX_LINE_BYTES = 1 << 20
"""A line longer than this is given as None (skipped to its end, unread)."""
BLOCK_BYTES = 1 << 18
"""Bytes read from the stream at a time."""

_WITHOUT_CR = methodcaller("rstrip", b"\r")


def line_blocks(stream: BinaryIO) -> Iterator[list[bytes | None]]:
    """The stream's lines, the complete lines of each block read as one list (none empty)."""
    carry = b""
    dropping = False
    """Inside a line already found overlong: skipped to its end."""
    while block := stream.read(BLOCK_BYTES):
        lines: list[bytes] = block.split(b"\n")
        tail = lines.pop()
        if lines:
            first_dropped = dropping
            lines[0] = carry + lines[0]
            yield _ended(lines, first_dropped, block)
            carry, dropping = tail, False
        elif not dropping:
            carry += tail
        if not dropping and len(carry) > MAX_LINE_BYTES:
            carry, dropping = b"", True
    if dropping:
        yield [None]
    elif carry:
        yield _ended([carry], False, b"")


def _ended(lines: list[bytes], first_dropped: bool, block: bytes) -> list[bytes | None]:
    """`lines` (split from `block`) without their ``\\r`` ends, an overlong one (or the first,
    when `first_dropped`) as None."""
    out: list[bytes | None]
    # Only the first line (with the carry) can be longer than the block.
    if len(lines[0]) > MAX_LINE_BYTES or (
        len(block) > MAX_LINE_BYTES and max(map(len, lines)) > MAX_LINE_BYTES
    ):
        out = [None if len(line) > MAX_LINE_BYTES else line.rstrip(b"\r") for line in lines]
    elif b"\r" in block or lines[0].endswith(b"\r"):
        out = list(map(_WITHOUT_CR, lines))
    else:
        out = cast("list[bytes | None]", lines)
    if first_dropped:
        out[0] = None
    return out


def numbered(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(line number, line) of a binary stream, one line at a time (1-based)."""
    return iter(Lines(stream))


class Lines:
    """The lines of a stream with their numbers: one at a time (`next`), or a run of the next
    lines of one block, looked at before they are taken (`run`, `take`)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._blocks = line_blocks(stream)
        self._block: list[bytes | None] = []
        self._at = 0
        self.number = 0
        """The number of the last line given or taken (0 before the first)."""

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> tuple[int, bytes | None]:
        if self._at == len(self._block) and not self._refill():
            raise StopIteration
        line = self._block[self._at]
        self._at += 1
        self.number += 1
        return self.number, line

    def run(self, limit: int) -> list[bytes | None]:
        """Up to `limit` of the next lines, all from one block, not yet taken ([] at the end
        of the stream); line ``self.number + 1`` is the first."""
        if self._at == len(self._block) and not self._refill():
            return []
        return self._block[self._at : self._at + limit]

    def take(self, count: int) -> None:
        """Take the first `count` lines of the last `run`."""
        self._at += count
        self.number += count

    def _refill(self) -> bool:
        block = next(self._blocks, None)
        if block is None:
            return False
        self._block, self._at = block, 0
        return True
