"""CDP audiences: membership events in the shapes CDPs emit, and how they fold: pure, no I/O.

Accepted messages (Segment's spec; RudderStack, mParticle's Segment-compatible outputs and
Hightouch emit the same shapes), alone or as ``{"batch": [...]}``:

- ``{"type": "track", "event": "Audience Entered" | "Audience Exited", "userId": ...,
  "properties": {"audience_key": "spring_vip"}, "timestamp": "2026-03-01T10:00:00Z"}``
- ``{"type": "identify", "userId": ..., "traits": {"spring_vip": true, "plan": "gold"}}``:
  every boolean trait whose name is an id is a membership (true: in, false: out); other traits
  are not audiences and are ignored.

The visitor is ``userId``, else ``anonymousId`` (each, when present, must be a shelfedge visitor
id: the id the storefront hands the CDP). ``timestamp`` (ISO 8601 with a zone) orders events;
without one, or later than the time of receipt, the time of receipt. A file import
(`parse_visitor_file`) is one visitor id a line.

Folding is last-writer-wins per audience by (time, entered < exited): the latest event decides,
a tie goes to the exit, and an exit is kept (a tombstone) so an older entry arriving late cannot
undo it. Duplicates and reordering therefore change nothing. At most `MAX_AUDIENCES` audiences
per visitor are kept, the most recent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fragments.ids import is_id
from fragments.wire_events import VISITOR
from origin.errors import AudienceInvalid

ENTERED = "Audience Entered"
EXITED = "Audience Exited"
MAX_BATCH = 1000
MAX_AUDIENCES = 100
State = tuple[bool, float]
"""(member, time of the event that decided it)."""


@dataclass(frozen=True, slots=True)
class Membership:
    """One visitor entering (`member`) or leaving an audience at `at`."""

    visitor: str
    audience: str
    member: bool
    at: float


def parse_body(doc: Any, now: float) -> list[Membership]:
    """A single CDP message or a ``{"batch": [...]}``; AudienceInvalid names the field
    (``batch[i].field`` in a batch)."""
    if isinstance(doc, dict) and "batch" in doc:
        batch = doc["batch"]
        if not isinstance(batch, list) or not 1 <= len(batch) <= MAX_BATCH:
            raise AudienceInvalid("batch", f"a list of 1-{MAX_BATCH} messages")
        out: list[Membership] = []
        for i, item in enumerate(batch):
            try:
                out += parse_message(item, now)
            except AudienceInvalid as exc:
                raise AudienceInvalid(f"batch[{i}].{exc.where}", exc.reason) from exc
        return out
    return parse_message(doc, now)


def parse_message(doc: Any, now: float) -> list[Membership]:
    """The memberships one track or identify message carries."""
    if not isinstance(doc, dict):
        raise AudienceInvalid("message", "a JSON object (a track or identify call)")
    kind = doc.get("type")
    visitor = _visitor(doc)
    if "timestamp" in doc and not isinstance(doc["timestamp"], str):
        raise AudienceInvalid("timestamp", "an ISO 8601 date-time string")
    at = _timestamp(doc.get("timestamp"), now)
    if kind == "track":
        event = doc.get("event")
        if event not in (ENTERED, EXITED):
            raise AudienceInvalid("event", f"{event!r}: expected {ENTERED!r} or {EXITED!r}")
        props = doc.get("properties")
        if not isinstance(props, dict):
            raise AudienceInvalid("properties", "an object with audience_key")
        return [Membership(visitor, _audience(props.get("audience_key")), event == ENTERED, at)]
    if kind == "identify":
        traits = doc.get("traits")
        if not isinstance(traits, dict):
            raise AudienceInvalid("traits", "an object of traits (booleans are audiences)")
        return [
            Membership(visitor, name, value, at)
            for name, value in sorted(traits.items())
            if isinstance(value, bool) and is_id(name)
        ]
    raise AudienceInvalid("type", f"{kind!r}: expected 'track' or 'identify'")


def parse_visitor_file(lines: Iterable[str], audience: str, now: float) -> list[Membership]:
    """One visitor id a line (blank lines and ``#`` comments skipped), all entering `audience`;
    AudienceInvalid names the 1-based line."""
    name = _audience(audience, "audience")
    out: list[Membership] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not VISITOR.fullmatch(line):
            raise AudienceInvalid(
                f"line {number}", f"{line[:80]!r} is not a visitor id (1-64 of A-Z a-z 0-9 - _)"
            )
        out.append(Membership(line, name, True, now))
    return out


def fold(stored: Mapping[str, State], changes: Iterable[Membership]) -> dict[str, State]:
    """`stored` after `changes` (one visitor's): last writer wins by (time, exit over entry)."""
    out = dict(stored)
    for change in changes:
        state = (change.member, change.at)
        current = out.get(change.audience)
        if current is None or _order(state) > _order(current):
            out[change.audience] = state
    if len(out) > MAX_AUDIENCES:
        newest = sorted(out.items(), key=lambda kv: (kv[1][1], kv[0]))[-MAX_AUDIENCES:]
        out = dict(newest)
    return out


def members(stored: Mapping[str, State]) -> frozenset[str]:
    """The audiences the visitor is in."""
    return frozenset(name for name, (member, _) in stored.items() if member)


def encode(state: State) -> str:
    return f"{1 if state[0] else 0}:{state[1]!r}"


def decode(text: str) -> State:
    flag, _, at = text.partition(":")
    return flag == "1", float(at)


def _order(state: State) -> tuple[float, int]:
    return state[1], 0 if state[0] else 1


def _visitor(doc: Mapping[str, Any]) -> str:
    found: str | None = None
    for field in ("userId", "anonymousId"):
        value = doc.get(field)
        if value is None:
            continue
        if not isinstance(value, str) or not VISITOR.fullmatch(value):
            raise AudienceInvalid(field, "a shelfedge visitor id (1-64 of A-Z a-z 0-9 - _)")
        found = found or value
    if found is None:
        raise AudienceInvalid("userId", "a shelfedge visitor id in userId or anonymousId")
    return found


def _audience(value: Any, where: str = "properties.audience_key") -> str:
    if not isinstance(value, str) or not is_id(value):
        raise AudienceInvalid(where, f"{value!r}: an audience key (1-64 of a-z 0-9 - _)")
    return value


def _timestamp(value: Any, now: float) -> float:
    if value is None:
        return now
    if not isinstance(value, str):
        raise AudienceInvalid("timestamp", "an ISO 8601 date-time string")
    try:
        parsed = datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise AudienceInvalid("timestamp", f"{value[:40]!r} is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise AudienceInvalid("timestamp", "needs a time zone (e.g. Z or +00:00)")
    try:
        at = parsed.timestamp()
    except (OverflowError, ValueError) as exc:
        raise AudienceInvalid("timestamp", f"{value[:40]!r} is out of range") from exc
    # A CDP clock ahead of ours must not make a membership unbeatable: the future is now.
    return min(at, now) if math.isfinite(at) else now
