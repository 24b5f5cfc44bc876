"""``shelfedge import audience NAME PATH``: a CDP audience exported as a file of visitor ids.

One visitor id a line (blank lines and ``#`` comments skipped; ``-`` reads stdin). The whole
file is checked first: a bad line aborts the import naming the file and line, and nothing is
written. Then every visitor enters audience NAME (``--exited``: leaves it) at the time of the
import, last writer wins against the CDP's own events (`origin.context.audiences`), and each
visitor's segment is decided again. Exit status: 0 applied, 1 refused.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from origin.context.audiences import parse_visitor_file
from origin.context.store import ContextStore
from origin.core.redis_client import redis_client
from origin.errors import AudienceInvalid, SettingsError
from origin.settings import Settings


def add_audience_parser(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import audience`` on the ``import`` command's kinds."""
    audience = kinds.add_parser(
        "audience", help="a CDP audience as a file of visitor ids (one a line)"
    )
    audience.add_argument("name", help="the audience key rules test (audience:<name>)")
    audience.add_argument("path", help="the file of visitor ids ('-' for stdin)")
    audience.add_argument(
        "--exited", action="store_true", help="the listed visitors leave the audience instead"
    )


def _lines(path: str) -> Iterator[str]:
    if path == "-":
        yield from sys.stdin
        return
    with Path(path).open(encoding="utf-8", errors="replace") as handle:
        yield from handle


async def import_audience_command(settings: Settings, args: argparse.Namespace) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL (or run 'shelfedge dev')", None)
    now = time.time()
    try:
        changes = parse_visitor_file(_lines(args.path), args.name, now)
    except AudienceInvalid as exc:
        print(f"shelfedge import audience: {args.path} {exc}; nothing imported", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shelfedge import audience: cannot read {args.path}: {exc}", file=sys.stderr)
        return 1
    if args.exited:
        changes = [replace(c, member=False) for c in changes]
    client = redis_client(settings.redis_url, timeout_ms=settings.redis_timeout_ms)
    try:
        store = ContextStore(client, ttl_seconds=settings.profile_ttl_seconds, timeout=5.0)
        visitors = await store.apply_membership_batch(changes, now=now)
    finally:
        await client.aclose()
    verb = "left" if args.exited else "entered"
    print(f"audience {args.name}: {visitors} visitors {verb} ({len(changes)} lines)")
    return 0
