"""Transport-neutral records and dead letters: what the pipeline consumes and rejects."""

from __future__ import annotations

from dataclasses import dataclass

MAX_REASON_BYTES = 1024
"""The dead-letter reason header is cut to this many bytes (at a character boundary)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record, decoupled from aiokafka's types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """Producer (create-time) timestamp: the start of event -> purge latency."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that can never be applied, with why."""

    record: Record
    reason: str

    def headers(self) -> list[tuple[str, bytes]]:
        """Dead-letter topic headers: the source coordinates and the reason."""
        r = self.record
        return [
            ("shelfedge.source.topic", r.topic.encode()),
            ("shelfedge.source.partition", str(r.partition).encode()),
            ("shelfedge.source.offset", str(r.offset).encode()),
            ("shelfedge.source.timestamp", str(r.timestamp_ms).encode()),
            ("shelfedge.error.reason", _utf8_prefix(self.reason, MAX_REASON_BYTES)),
        ]


def _utf8_prefix(text: str, limit: int) -> bytes:
    """At most `limit` bytes of `text` as UTF-8, never cutting a character in two."""
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore").encode("utf-8")
