"""``shelfedge import lists`` and ``shelfedge segments sync``: retailer data from files.

Both run against the origin's Redis (`origin.settings.Settings`), build what changed and enqueue
purges for the configured purgers (``SHELFEDGE_PURGERS``); both print a report and exit 1 when
something was rejected.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from fragments.slots import load_slots
from origin.core.builder import BundleBuilder
from origin.core.list_import import import_lists
from origin.core.lists import DEFAULT_BATCH_LIST_NAME, parse_list_lines
from origin.core.purge_queue import PurgeRequest
from origin.core.recompute import Recomputer
from origin.core.redis_client import redis_client
from origin.core.segment_changes import SegmentEditor
from origin.core.segments_config import DEMO_SEGMENTS_FILE, load_segments_file
from origin.core.store import Store
from origin.errors import SettingsError
from origin.ingest.compression import decompressed
from origin.settings import Settings


def add_lists_parser(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import lists`` on the ``import`` command's kinds."""
    lists = kinds.add_parser("lists", help="import recommendation lists (JSON Lines)")
    lists.add_argument("path", help="JSON Lines file, one list per line ('-' for stdin)")
    lists.add_argument(
        "--name",
        default=DEFAULT_BATCH_LIST_NAME,
        help="list name for recommender batch-output lines (which carry none)",
    )
    lists.add_argument(
        "--version", type=int, default=None, help="version of lines without one (default: now)"
    )
    lists.add_argument(
        "--user-segment",
        action="append",
        default=[],
        metavar="USER=SEGMENT",
        help="map a batch-output userId to a segment (repeatable)",
    )


def add_segments_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``segments`` on the CLI's sub-command parser."""
    segments = sub.add_parser("segments", help="segments as configuration")
    seg_sub = segments.add_subparsers(dest="segments_command", required=True)
    sync = seg_sub.add_parser("sync", help="make the stored segments those of a segments file")
    sync.add_argument(
        "path", nargs="?", default=None, help="segments file (default: SHELFEDGE_SEGMENTS_FILE)"
    )


def segments_file(settings: Settings, given: str | None = None) -> Path:
    """The segments file to read: the one given, SHELFEDGE_SEGMENTS_FILE, or the demo's."""
    chosen = given or settings.segments_file
    return Path(chosen) if chosen else DEMO_SEGMENTS_FILE


def _user_segments(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        user, sep, segment = pair.partition("=")
        if not sep or not user or not segment:
            raise SettingsError("--user-segment", "USER=SEGMENT", pair)
        out[user] = segment
    return out


def _lines(path: str) -> Iterator[str]:
    """The lines of the file at `path` (or stdin), gzip, bzip2 or zip compressed or not."""
    if path == "-":
        yield from _text_lines(cast("io.BufferedReader[Any]", sys.stdin.buffer))
        return
    try:
        handle = Path(path).open("rb")  # noqa: SIM115
    except OSError as exc:
        raise SettingsError("PATH", "a readable JSON Lines file", path) from exc
    with handle:
        yield from _text_lines(handle)


def _text_lines(stream: io.BufferedReader[Any]) -> Iterator[str]:
    feed, _ = decompressed(stream)
    yield from io.TextIOWrapper(feed, encoding="utf-8", errors="replace")


async def import_lists_command(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL (or run 'shelfedge dev')", None)
    client = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        store = Store(client, 5.0)
        recomputer = Recomputer(store, BundleBuilder(load_slots()), await store.segments())
        version = args.version or int(time.time() * 1000)
        parsed = parse_list_lines(
            _lines(args.path),
            version=version,
            default_name=args.name,
            user_segments=_user_segments(args.user_segment),
        )
        purge = PurgeRequest(settings.purgers, 1, int(time.time() * 1000))
        report = await import_lists(recomputer, parsed, purge)
    finally:
        await client.aclose()
    print(
        f"lists: read {report.read}, created {report.created}, replaced {report.replaced}, "
        f"unchanged {report.unchanged}, stale {report.stale}, rejected {report.rejected}; "
        f"bundles recomputed {report.recomputed}, changed (purged) {len(report.changed)}"
    )
    for list_id, skus in sorted(report.unknown_skus.items()):
        shown = ", ".join(skus[:10]) + (f" and {len(skus) - 10} more" if len(skus) > 10 else "")
        print(f"  unknown SKUs in {list_id} ({len(skus)}): {shown}")
    for rejection in report.rejections:
        print(f"  rejected {rejection}")
    return 1 if report.rejected else 0


async def segments_sync_command(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL (or run 'shelfedge dev')", None)
    segments = load_segments_file(segments_file(settings, args.path))
    client = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        editor = SegmentEditor(Store(client, 5.0), BundleBuilder(load_slots()), settings.purgers)
        report = await editor.replace_all(segments)
    finally:
        await client.aclose()
    print(
        f"segments: added {report.added or '-'}, updated {report.updated or '-'}, "
        f"removed {report.removed or '-'}; bundles built {report.bundles_built} "
        f"(changed {report.bundles_changed}), retired {report.bundles_retired}"
    )
    return 0
