"""Catalog ingest benchmark: a generated Merchant Center feed imported, then re-imported with 1 %
of its prices changed, against a raw parse of the same feed, side by side.

``python -m bench.ingest [--short] [--strict]``

1. Generate a TSV feed of 200,000 items (20,000 in short mode) into a temporary file with
   `origin.ingest.synthetic_feed`, and a copy whose prices differ for 1 % of the items.
2. Baseline: a raw parse of the same file with the ``csv`` module (every row read, nothing
   validated or applied), in this process.
3. Start a fresh `redis-server` and run ``python -m shelfedge import catalog FEED`` as a
   subprocess, as a user would: every product created, every list ranked and every bundle
   built. Measured: items/s (items read over the importer's own seconds to the last bundle),
   the importer's peak RSS (with its judging workers': `bench.processes.TreeRss`), its CPU
   (with its workers') and Redis's.
4. Re-import the 1 %-changed feed: seconds, bundles changed and purges enqueued, and the purged
   tags checked against the bundles that showed a repriced product before the re-import.

Targets: >= 20,000 items/s; importer peak RSS <= 300 MB; the 1 % re-import purges no bundle that
did not show a repriced product; it takes <= 10 % of the full import's time.
It must never touch a Redis it did not start.
"""

from __future__ import annotations

import asyncio
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench.cpu import redis_cpu_seconds
from bench.errors import BenchRunError
from bench.processes import TreeRss
from bench.report import (
    BenchOptions,
    Target,
    at_least,
    at_most,
    heading,
    ratio,
    ratio_line,
    run_benchmark,
    say,
)
from fragments.ids import FragmentKey
from fragments.tags import bundle_tag
from origin.core import keys
from origin.core.redis_text import as_text
from origin.ingest.synthetic_feed import item_id, synthetic_items, tsv_lines
from shelfedge.localstack import RedisServer

REPO_ROOT = Path(__file__).resolve().parents[1]
ITEMS_PER_S_TARGET = 20_000.0
PEAK_RSS_TARGET_MB = 300.0
REIMPORT_SHARE_TARGET = 0.10
REPRICED_SHARE = 0.01
IMPORT_TIMEOUT_S = 900
_SUMMARY = re.compile(
    r"read (?P<read>\d+), created (?P<created>\d+), changed (?P<changed>\d+), "
    r"unchanged (?P<unchanged>\d+), removed (?P<removed>\d+), rejected (?P<rejected>\d+); "
    r"bundles changed (?P<bundles>\d+) of (?P<recomputed>\d+) recomputed, "
    r"purges (?P<purges>\d+); (?P<seconds>[0-9.]+)s"
)


@dataclass(frozen=True, slots=True)
class ImportRun:
    """One `shelfedge import catalog` process, as measured from outside."""

    counts: dict[str, int]
    seconds: float
    """The importer's own seconds to the last bundle (its report)."""
    wall_s: float
    """The process, start-up included."""
    peak_rss_mb: float
    """The importer and its worker processes together."""
    cpu_s: float
    redis_cpu_s: float

    @property
    def items_per_s(self) -> float:
        return self.counts["read"] / self.seconds

    def line(self) -> str:
        c = self.counts
        return (
            f"read {c['read']}, created {c['created']}, changed {c['changed']}, unchanged "
            f"{c['unchanged']}; bundles changed {c['bundles']} of {c['recomputed']}, purges "
            f"{c['purges']}; {self.seconds:.2f} s ({self.items_per_s:,.0f} items/s; process "
            f"{self.wall_s:.2f} s wall, {self.cpu_s:.2f} s CPU, peak RSS "
            f"{self.peak_rss_mb:.0f} MB; Redis {self.redis_cpu_s:.2f} s CPU)"
        )


def write_feed(path: Path, count: int, repriced: frozenset[int] = frozenset()) -> int:
    with path.open("w", encoding="utf-8") as out:
        for line in tsv_lines(synthetic_items(count, repriced=repriced)):
            out.write(line)
    return path.stat().st_size


def raw_parse(path: Path) -> tuple[int, float, float]:
    """(rows, seconds, CPU seconds) of reading every row with the csv module."""
    started, cpu = time.perf_counter(), time.process_time()
    with path.open(encoding="utf-8", newline="") as feed:
        rows = sum(1 for _ in csv.reader(feed, delimiter="\t")) - 1
    return rows, time.perf_counter() - started, time.process_time() - cpu


async def run_import(path: Path, redis_url: str, redis: Redis) -> ImportRun:
    redis_cpu0 = await redis_cpu_seconds(redis)
    run = await asyncio.to_thread(_import_process, path, redis_url)
    return ImportRun(**run, redis_cpu_s=await redis_cpu_seconds(redis) - redis_cpu0)


def _import_process(path: Path, redis_url: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFEDGE_")}
    env.update(REDIS_URL=redis_url, SHELFEDGE_PURGERS="local-edge")
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "shelfedge", "import", "catalog", str(path)],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        tree = TreeRss(process.pid).start()
        _, status, usage = os.wait4(process.pid, 0)
        tree_peak = tree.stop()
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise BenchRunError(
            f"shelfedge import catalog exited {process.returncode}:\n{text[-2000:]}"
        )
    match = _SUMMARY.search(text)
    if match is None:
        raise BenchRunError(f"no import report in the output:\n{text[-2000:]}")
    return {
        "counts": {k: int(v) for k, v in match.groupdict().items() if k != "seconds"},
        "seconds": float(match["seconds"]),
        "wall_s": wall,
        # wait4's peak is the largest single process; the sampled tree adds up the importer
        # and its judging workers at the same moment.
        "peak_rss_mb": max(usage.ru_maxrss * 1024, tree_peak) / 2**20,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


async def _drain_purges(redis: Redis) -> set[str]:
    """Every tag queued for purging (the queues are emptied)."""
    tags: set[str] = set()
    async for key in redis.scan_iter(match="se:*:purgeq:*"):
        members: list[Any] = await redis.zrange(key, 0, -1)
        tags.update(as_text(m) for m in members)
        await redis.delete(key)
    return tags


async def _tags_showing(redis: Redis, skus: Sequence[str]) -> set[str]:
    """Tags of every stored bundle whose candidates include one of `skus`."""
    tags: set[str] = set()
    partitions = [as_text(p) for p in await redis.smembers(keys.PARTITIONS_KEY)]
    if not partitions:
        async for key in redis.scan_iter(match="se:{b:*}:skuindex"):
            partitions.append(as_text(key).split("{b:", 1)[1].split("}", 1)[0])
    for partition in partitions:
        values = await redis.hmget(keys.partition_index_key(partition), list(skus))
        for value in values:
            if value:
                tags.update(
                    bundle_tag(FragmentKey.from_cache_key(k)) for k in as_text(value).split()
                )
    return tags


def body(options: BenchOptions) -> list[Target]:
    return asyncio.run(_body(options))


async def _body(options: BenchOptions) -> list[Target]:
    count = 20_000 if options.short else 200_000
    repriced = frozenset(range(0, count, round(1 / REPRICED_SHARE)))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        feed, changed_feed = Path(folder, "feed.tsv"), Path(folder, "feed-1pct.tsv")
        heading("feeds")
        size = write_feed(feed, count)
        write_feed(changed_feed, count, repriced)
        say(f"generated {count:,} items ({size / 1e6:.1f} MB TSV), {len(repriced):,} repriced")

        heading("baseline: raw csv parse of the same file")
        rows, raw_s, raw_cpu = raw_parse(feed)
        if rows != count:
            raise BenchRunError(f"the raw parse read {rows} rows, expected {count}")
        raw_rate = rows / raw_s
        say(f"{rows:,} rows in {raw_s:.2f} s ({raw_rate:,.0f} rows/s, {raw_cpu:.2f} s CPU)")

        with RedisServer() as server:
            redis = Redis.from_url(server.url, socket_timeout=30)
            heading("full import into a fresh Redis (every bundle built)")
            full = await run_import(feed, server.url, redis)
            say(full.line())
            if full.counts["created"] != count:
                raise BenchRunError(f"created {full.counts['created']} of {count}")
            ratio_line(
                "import/raw-parse items/s", ratio(full.items_per_s, raw_rate, "raw parse"),
                f"{full.items_per_s:,.0f}", f"{raw_rate:,.0f}",
            )  # fmt: skip
            await _drain_purges(redis)
            affected = await _tags_showing(redis, [item_id(i) for i in repriced])

            heading("re-import with 1 % of prices changed")
            again = await run_import(changed_feed, server.url, redis)
            say(again.line())
            purged = await _drain_purges(redis)
            stray = purged - affected
            say(
                f"purged {len(purged)} bundle tags; {len(affected)} bundles showed a repriced "
                f"product; purged outside them: {len(stray)}"
            )
            if again.counts["changed"] != len(repriced):
                raise BenchRunError(f"changed {again.counts['changed']}, expected {len(repriced)}")
            share = ratio(again.seconds, full.seconds, "full import")
            ratio_line(
                "1% re-import/full import seconds",
                share,
                f"{again.seconds:.2f}",
                f"{full.seconds:.2f}",
            )
            await redis.aclose()
    return [
        at_least("import items/s", full.items_per_s, ITEMS_PER_S_TARGET, "/s"),
        at_most("importer peak RSS (with its workers)", full.peak_rss_mb, PEAK_RSS_TARGET_MB, "MB"),
        at_most("1% re-import purges outside affected bundles", len(stray), 0),
        at_most("1% re-import / full import time", share, REIMPORT_SHARE_TARGET),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark("bench.ingest", "catalog feed import vs a raw csv parse", body, argv)


if __name__ == "__main__":
    sys.exit(main())
