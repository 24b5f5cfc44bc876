"""``shelfedge import catalog PATH_OR_URL``: import a Merchant Center feed from a file or URL.

A URL is downloaded to a temporary file first (streamed, never held in memory). On a terminal a
rich progress bar follows the phases (bytes read while staging, then items applied and bundles
propagated); the final report counts read, created, changed, unchanged, removed and rejected
items and lists the first rejections with their line or item index, field and reason.
Exit status: 0 applied, 1 aborted (reject threshold) or unreadable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from fragments.slots import load_slots
from origin.core.env import redact_url
from origin.core.redis_client import redis_client
from origin.core.store import Store
from origin.errors import SettingsError
from origin.ingest.catalog_import import Progress as ProgressCallback
from origin.ingest.errors import ImportAborted, IngestError
from origin.ingest.judging import worker_count
from origin.ingest.report import ImportReport
from origin.ingest.service import catalog_importer
from origin.settings import Settings

SHOWN_REJECTIONS = 20
_PHASES = {"stage": "reading and checking", "apply": "applying", "propagate": "recomputing bundles"}


def add_catalog_parser(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``import catalog`` on the ``import`` command's kinds."""
    catalog = kinds.add_parser(
        "catalog", help="import a product feed: Merchant Center TSV, RSS/Atom XML, or JSON Lines"
    )
    catalog.add_argument("source", help="a file path or an http(s) URL")
    catalog.add_argument(
        "--delta", action="store_true",
        help="update only the products the feed carries (default: the feed is the whole "
        "catalog, and products it lacks are removed)",
    )  # fmt: skip
    catalog.add_argument(
        "--reject-threshold", type=float, default=0.01, metavar="SHARE",
        help="abort, applying nothing, when more than this share of items is rejected (0.01)",
    )  # fmt: skip
    catalog.add_argument(
        "--currency", default="USD", help="the catalog's ISO 4217 currency (others are rejected)"
    )
    catalog.add_argument(
        "--workers", type=_workers, default=None, metavar="N",
        help="worker processes that validate large parts of the feed (default: "
        "SHELFEDGE_IMPORT_WORKERS, else one per core beyond the first, at most 4; 0: validate "
        "in this process only)",
    )  # fmt: skip


def run_import_command(args: argparse.Namespace, settings: Settings) -> int:
    if settings.redis_url is None:
        raise SettingsError("REDIS_URL", "a redis:// URL (or run 'shelfedge dev')", None)
    if not 0 <= args.reject_threshold <= 1:
        print("shelfedge import: --reject-threshold must be between 0 and 1")
        return 2
    console = Console(soft_wrap=True)
    with _local_copy(args.source) as (path, size):
        try:
            report = asyncio.run(_import(path, size, args, settings, console))
        except ImportAborted as exc:
            _print_report(console, exc.report)
            console.print(f"[red]import aborted:[/red] {exc}")
            return 1
        except IngestError as exc:
            console.print(f"[red]import failed:[/red] {exc}")
            return 1
    _print_report(console, report)
    return 0


def _workers(text: str) -> int:
    """``--workers``: a count of worker processes (`origin.ingest.judging.worker_count`)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    try:
        return worker_count(count)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def _import(
    path: Path, size: int, args: argparse.Namespace, settings: Settings, console: Console
) -> ImportReport:
    client = redis_client(settings.redis_url or "", timeout_ms=30_000, per_reply_timeout=False)
    try:
        store = Store(client, 30.0)
        importer = await catalog_importer(
            store,
            load_slots(),
            settings.purgers,
            currency=args.currency.upper(),
            judge_workers=settings.import_workers if args.workers is None else args.workers,
        )
        with path.open("rb") as stream, _progress(console) as progress:
            return await importer.run(
                stream,
                source=shown_source(args.source),
                mode="delta" if args.delta else "full",
                reject_threshold=args.reject_threshold,
                total_bytes=size,
                progress=progress,
            )
    finally:
        await client.aclose()


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[ProgressCallback | None]:
    """A progress callback: a rich bar per phase on a terminal, nothing otherwise."""
    if not console.is_terminal:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description:<22}"), BarColumn(), DownloadColumn(binary_units=True),
        TimeRemainingColumn(), console=console, transient=False,
    )  # fmt: skip
    tasks: dict[str, TaskID] = {}

    def update(phase: str, done: int, total: int | None) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=total)
        bars.update(tasks[phase], completed=done, total=total)

    with bars:
        yield update


def shown_source(source: str) -> str:
    """`source` as reports, logs and the stored last-import report show it: a URL without its
    password or query (feed URLs carry credentials: ``https://user:pass@…``, presigned
    ``?X-Amz-Signature=…``, ``?token=…``)."""
    if not source.startswith(("http://", "https://")):
        return source
    base, query, _ = redact_url(source).partition("?")
    return f"{base}?..." if query else base


@contextlib.contextmanager
def _local_copy(source: str) -> Iterator[tuple[Path, int]]:
    """A local path for `source`: the file itself, or a URL streamed to a temporary file."""
    if not source.startswith(("http://", "https://")):
        path = Path(source)
        if not path.is_file():
            raise SettingsError("PATH_OR_URL", "a readable feed file or an http(s) URL", source)
        yield path, path.stat().st_size
        return
    handle, name = tempfile.mkstemp(prefix="shelfedge-feed-")
    try:
        with (
            os.fdopen(handle, "wb") as out,
            # Feed URLs redirect (http to https, a CDN, a presigned storage URL): follow them.
            httpx.stream("GET", source, timeout=60, follow_redirects=True) as response,
        ):
            response.raise_for_status()
            _copy(response.iter_bytes(), out)
        yield Path(name), Path(name).stat().st_size
    except httpx.HTTPStatusError as exc:
        answer = f"{exc.response.status_code} {exc.response.reason_phrase}"
        raise SettingsError(
            "PATH_OR_URL", "a feed URL that answers 200", f"{shown_source(source)}: {answer}"
        ) from None
    except httpx.HTTPError as exc:
        # The error's text may hold the URL with its credentials: only its kind is shown.
        problem = type(exc).__name__
        raise SettingsError(
            "PATH_OR_URL", "a feed URL that answers 200", f"{shown_source(source)}: {problem}"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _copy(chunks: Iterator[bytes], out: IO[bytes]) -> None:
    for chunk in chunks:
        out.write(chunk)


def _print_report(console: Console, report: ImportReport) -> None:
    console.print(report.summary())
    if report.judged_in_workers:
        console.print(f"  {report.judged_in_workers} items validated in worker processes")
    for rejection in report.rejections[:SHOWN_REJECTIONS]:
        console.print(f"  rejected {rejection}", markup=False, highlight=False)
    more = report.rejected - min(len(report.rejections), SHOWN_REJECTIONS)
    if more > 0:
        console.print(f"  ... and {more} more rejected")
