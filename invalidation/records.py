"""Transport-neutral records and dead letters: what the pipeline consumes and rejects."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from invalidation.errors import BadEvent
from invalidation.events import SourceEvent, parse_event

MAX_REASON_BYTES = 1024
"""The dead-letter reason header is cut to this many bytes (at a character boundary)."""
REASON_CLASSES: tuple[tuple[str, str], ...] = (
    ("unknown schema", "unknown_schema"),
    ("empty record value", "tombstone"),
    ("oversized event", "oversized"),
    ("not JSON", "not_json"),
    ("unknown sku", "unknown_sku"),
)
"""Reason prefixes and the class each names (metrics label, ``shelfedge dlq --reason``)."""


def reason_class(reason: str) -> str:
    """The short class of a dead-letter reason: ``unknown_schema``, ``tombstone``,
    ``oversized``, ``not_json``, ``schema_violation``, ``unknown_sku`` or ``other``."""
    for prefix, name in REASON_CLASSES:
        if reason.startswith(prefix):
            return name
    return "schema_violation" if " schema violation: " in reason else "other"


class Record(NamedTuple):
    """One consumed Kafka record, decoupled from aiokafka's types (a tuple: one is made for every
    record consumed)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    """Producer (create-time) timestamp: the start of event -> purge latency."""
    headers: tuple[tuple[str, bytes], ...] = ()
    """Record headers (the producer's W3C trace context, a dead letter's source coordinates)."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that can never be applied, with why."""

    record: Record
    reason: str

    @property
    def reason_class(self) -> str:
        return reason_class(self.reason)

    def headers(self) -> list[tuple[str, bytes]]:
        """Dead-letter topic headers: the source coordinates, the reason and its class, and the
        source record's own headers (its trace context) under their own names."""
        r = self.record
        own = [(name, value) for name, value in r.headers if not name.startswith("shelfedge.")]
        return [
            *own,
            ("shelfedge.source.topic", r.topic.encode()),
            ("shelfedge.source.partition", str(r.partition).encode()),
            ("shelfedge.source.offset", str(r.offset).encode()),
            ("shelfedge.source.timestamp", str(r.timestamp_ms).encode()),
            ("shelfedge.error.reason", _utf8_prefix(self.reason, MAX_REASON_BYTES)),
            ("shelfedge.error.class", self.reason_class.encode()),
        ]


def _utf8_prefix(text: str, limit: int) -> bytes:
    """At most `limit` bytes of `text` as UTF-8, never cutting a character in two."""
    return text.encode("utf-8", "replace")[:limit].decode("utf-8", "ignore").encode("utf-8")


@dataclass(slots=True)
class DecodedRecords:
    """Records in arrival order and what they decode to: events, or dead letters.

    The consumer decodes records as they are fetched, so decoding a window overlaps the Redis
    work of the one before it.
    """

    records: list[Record] = field(default_factory=list)
    """Every record, valid or not (offsets are committed for all of them)."""
    valid: list[Record] = field(default_factory=list)
    events: list[SourceEvent] = field(default_factory=list)
    """The event of each valid record, in the same order."""
    dead_letters: list[DeadLetter] = field(default_factory=list)

    @classmethod
    def of(cls, records: Iterable[Record]) -> DecodedRecords:
        decoded = cls()
        decoded.add(records)
        return decoded

    def __len__(self) -> int:
        return len(self.records)

    def add(self, records: Iterable[Record]) -> None:
        for record in records:
            self.records.append(record)
            try:
                self.events.append(parse_event(record.topic, record.value))
            except BadEvent as exc:
                self.dead_letters.append(DeadLetter(record, exc.reason))
                continue
            self.valid.append(record)

    def keeping(self, keep: Callable[[Record], bool]) -> DecodedRecords:
        """Only the records `keep` accepts, with what they decoded to."""
        pairs = [(r, e) for r, e in zip(self.valid, self.events, strict=True) if keep(r)]
        return DecodedRecords(
            records=[r for r in self.records if keep(r)],
            valid=[r for r, _ in pairs],
            events=[e for _, e in pairs],
            dead_letters=[d for d in self.dead_letters if keep(d.record)],
        )
