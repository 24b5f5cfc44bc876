"""``shelfedge dlq list | show | replay``: inspect the dead-letter topic and re-drive dead letters
to their source topic after a fix (`invalidation.dead_letters`).

Filters (list and replay): ``--topic`` (source topic, repeatable), ``--reason`` (a class such as
``unknown_sku`` or ``schema_violation``, or words of the reason), ``--since`` / ``--until`` (when
dead-lettered: RFC 3339 such as ``2026-01-01T10:00:00Z``, unix milliseconds, or an age such as
``15m``, ``2h``, ``1d``). ``list`` prints one tab-separated line per dead letter (``--json``: one
JSON object per line) and a count per reason class on stderr. ``replay`` re-drives the dead
letters named by coordinates, or every one matching the filters (``--all`` when no filter is
given), skipping those re-driven before unless ``--force``; ``--dry-run`` only lists them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from contextlib import suppress
from datetime import datetime

from invalidation.dead_letters import (
    DeadLetterFilter,
    DeadLetterRecord,
    read_dead_letters,
    replay_dead_letters,
)
from invalidation.errors import DeadLetterError
from invalidation.settings import InvalidationSettings
from origin.core.redis_client import redis_client
from origin.errors import SettingsError

_AGE = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_dlq_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser("dlq", help="list, show or re-drive dead letters")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="list dead letters (filters narrow)")
    _filters(listing)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = dlq_sub.add_parser("show", help="show one dead letter in full")
    show.add_argument("coordinates", help="PARTITION:OFFSET in the dead-letter topic")
    replay = dlq_sub.add_parser("replay", help="re-drive dead letters to their source topic")
    replay.add_argument("coordinates", nargs="*", help="PARTITION:OFFSET (default: the filters)")
    _filters(replay)
    replay.add_argument("--all", action="store_true", help="every dead letter (no filter)")
    replay.add_argument("--force", action="store_true", help="re-drive ones re-driven before")
    replay.add_argument("--dry-run", action="store_true", help="list what would be re-driven")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", action="append", default=[], help="source topic (repeatable)")
    parser.add_argument("--reason", help="reason class (e.g. unknown_sku) or words of the reason")
    parser.add_argument("--since", help="dead-lettered at or after: RFC 3339, unix ms or 15m/2h/1d")
    parser.add_argument("--until", help="dead-lettered before (same forms)")


def parse_when(text: str | None, now: float) -> int | None:
    """Unix milliseconds from RFC 3339, unix milliseconds, or an age (``15m``) before `now`."""
    if text is None:
        return None
    age = _AGE.match(text)
    if age:
        return int((now - int(age.group(1)) * _UNIT_S[age.group(2)]) * 1000)
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(
            "--since/--until", "RFC 3339 (2026-01-01T10:00:00Z), unix ms or an age (15m)", text
        ) from None
    if parsed.tzinfo is None:
        raise SettingsError("--since/--until", "a time with a zone (Z or +01:00)", text)
    return int(parsed.timestamp() * 1000)


def filter_of(args: argparse.Namespace, now: float) -> DeadLetterFilter:
    return DeadLetterFilter(
        topics=tuple(args.topic),
        reason=args.reason,
        since_ms=parse_when(args.since, now),
        until_ms=parse_when(args.until, now),
        coordinates=tuple(getattr(args, "coordinates", ()) or ()),
    )


def _line(record: DeadLetterRecord) -> str:
    doc = record.as_json()
    reason = " ".join(record.reason.split())
    return "\t".join(
        [doc["dlq"], doc["dead_lettered_at"], doc["source"], record.reason_class,
         doc["event_id"] or "-", reason]
    )  # fmt: skip


async def run_dlq(settings: InvalidationSettings, args: argparse.Namespace) -> int:
    if settings.kafka_bootstrap is None:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS", "host:port (or run 'shelfedge dev')", None)
    bootstrap, security = settings.kafka_bootstrap, settings.kafka_security
    if args.dlq_command == "show":
        if not re.fullmatch(r"\d+:\d+", args.coordinates):
            raise SettingsError("coordinates", "PARTITION:OFFSET, e.g. 0:42", args.coordinates)
        found = await read_dead_letters(
            bootstrap, DeadLetterFilter(coordinates=(args.coordinates,)), security=security
        )
        if not found:
            raise DeadLetterError(f"no dead letter at {args.coordinates}")
        doc = found[0].as_json()
        doc["headers"] = {n: v.decode("utf-8", "replace") for n, v in found[0].headers}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    wanted = filter_of(args, time.time())
    if args.dlq_command == "list":
        records = await read_dead_letters(bootstrap, wanted, security=security)
        for record in records:
            print(json.dumps(record.as_json()) if args.json else _line(record))
        counts = Counter(r.reason_class for r in records)
        per_reason = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"
        print(f"{len(records)} dead letters ({per_reason})", file=sys.stderr)
        return 0
    if wanted.is_empty and not args.all:
        raise SettingsError("dlq replay", "coordinates, a filter, or --all", None)
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL (replayed dead letters are noted)", None)
    records = await read_dead_letters(bootstrap, wanted, security=security)
    redis = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        report = await replay_dead_letters(
            bootstrap, redis, records, force=args.force, dry_run=args.dry_run, security=security
        )
    finally:
        with suppress(Exception):
            await redis.aclose()
    verb = "would re-drive" if args.dry_run else "re-driven"
    for record in report.replayed:
        print(f"{verb}\t{_line(record)}")
    for record in report.skipped:
        print(f"skipped (re-driven before)\t{_line(record)}")
    print(("dry run: " if args.dry_run else "") + report.summary(), file=sys.stderr)
    return 0
