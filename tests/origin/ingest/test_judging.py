"""Judging staged items: the pure `judge`, worker processes, and a worker that dies."""

from __future__ import annotations

import asyncio
import io
import logging
import multiprocessing
import os
import signal
from concurrent.futures import Future
from typing import Any

import msgspec
import pytest
from redis.asyncio import Redis

from origin.ingest import catalog_import, judging
from origin.ingest.catalog_feed import RawChunk, RawItem, read_chunks
from origin.ingest.errors import Rejected
from origin.ingest.feed_fields import FeedItem, parse_item
from origin.ingest.judging import Judged, Judges, judge
from origin.ingest.report import ImportReport, Rejection
from origin.ingest.spool import BATCH
from origin.ingest.synthetic_feed import jsonl_lines, rss_chunks, synthetic_items, tsv_lines
from tests.origin.ingest.support import make_shop, tsv_with_rejects

NOW = 1_800_000_000.0
_FRAMES = msgspec.msgpack.Decoder(list[tuple[FeedItem, bytes]])


def _feed(count: int) -> bytes:
    return tsv_with_rejects(count).encode()


def _one_by_one(raws: list[RawItem]) -> tuple[list[tuple[FeedItem, bytes]], list[Rejection]]:
    valid, rejected = [], []
    for raw in raws:
        try:
            valid.append(
                (parse_item(raw.fields, "USD", normalized=raw.normalized, now=NOW), raw.digest)
            )
        except Rejected as exc:
            rejected.append(Rejection(raw.position, "line", raw.sku, exc.field, exc.reason))
    return valid, rejected


def _frames(judged: Judged) -> list[tuple[FeedItem, bytes]]:
    return [frame for batch in judged.batches for frame in _FRAMES.decode(batch)]


def _chunk(count: int) -> RawChunk:
    chunks = list(read_chunks(io.BytesIO(_feed(count)), "tsv", b"test", 10**6))
    assert len(chunks) == 1
    return chunks[0]


def test_judge_spools_what_parse_item_accepts_and_names_what_it_rejects() -> None:
    chunk = _chunk(BATCH * 2 + 137)  # three batches
    expected_valid, expected_rejected = _one_by_one(list(chunk.items()))
    judged = judge(chunk, "USD", NOW, "line")
    assert len(judged.batches) == 3
    assert judged.count == len(expected_valid) == len(_frames(judged))
    assert _frames(judged) == expected_valid
    assert judged.rejected == expected_rejected
    assert {r.field for r in judged.rejected} == {"price"}
    # A subset of a chunk, and the same items as objects, judge alike.
    picked = list(range(5, len(chunk), 3))
    subset = chunk.subset(picked)
    assert [r.position for r in subset.items()] == [chunk.positions[at] for at in picked]
    as_items = judge([chunk.item(at) for at in picked], "USD", NOW, "line")
    assert _frames(judge(subset, "USD", NOW, "line")) == _frames(as_items)
    assert judge(subset, "USD", NOW, "line").rejected == as_items.rejected


async def test_a_dead_worker_loses_nothing_its_chunks_are_judged_here(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chunk = _chunk(300)
    expected = judge(chunk, "USD", NOW, "line")
    judges = Judges("USD", NOW, "line", workers=1, pool_min=1)
    try:
        first = await judges.judge(chunk)
        assert judges.sent == 0  # the first large chunk: judged here
        assert _frames(await judges.judge(chunk)) == _frames(expected)
        assert judges.sent == 1
        workers = multiprocessing.active_children()
        assert workers  # the pool's process is running
        for process in workers:
            os.kill(process.pid or 0, signal.SIGKILL)
        for process in workers:
            await asyncio.to_thread(process.join, 10)
            assert not process.is_alive()
        with caplog.at_level(logging.WARNING, logger=judging.__name__):
            second = await judges.judge(chunk)
            third = await judges.judge(chunk)
        assert judges.sent == 1  # judged here, both
        assert "worker process failed (BrokenProcessPool" in caplog.text
        assert judges.in_flight == 1
        for judged in (first, second, third):
            assert _frames(judged) == _frames(expected)
            assert judged.rejected == expected.rejected
    finally:
        judges.close()


def _items_with_rejects(count: int) -> list[dict[str, str]]:
    """`count` synthetic items, a bad price on every 10th and a repeat after every 15th."""
    items = list(synthetic_items(count))
    out: list[dict[str, str]] = []
    for n, item in enumerate(items):
        out.append({**item, "price": "free"} if n % 10 == 3 else item)
        if n % 15 == 8:
            out.append(items[n - 8])
    return out


_FORMATS = {
    "tsv": lambda items: "".join(tsv_lines(iter(items))),
    "jsonl": lambda items: "".join(jsonl_lines(iter(items))),
    "xml": lambda items: "".join(rss_chunks(iter(items))),
}


@pytest.mark.parametrize("fmt", sorted(_FORMATS))
async def test_an_import_judged_in_worker_processes_equals_one_judged_here(
    redis_client: Redis, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Small chunks, each large enough for a worker: some are judged in the worker process,
    others here meanwhile; the report (rejections in feed order) and every product document
    are those of an import judged only here, for each format (TSV chunks travel as rows,
    JSON Lines and XML chunks as whole items)."""
    monkeypatch.setattr(catalog_import, "STAGE_CHUNK", 37)
    monkeypatch.setattr(judging, "POOL_MIN_ITEMS", 1)
    made: list[Judges] = []

    class Recorded(Judges):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(catalog_import, "Judges", Recorded)
    feed = _FORMATS[fmt](_items_with_rejects(400))
    results: list[tuple[ImportReport, dict[str, Any]]] = []
    for workers in (0, 1):
        await redis_client.flushall()
        shop = await make_shop(redis_client)
        shop.importer.judge_workers = workers
        report = await shop.load(feed, reject_threshold=0.5)
        skus = sorted(await shop.store.all_skus())
        products = await shop.store.products(skus, locations=False)
        results.append((report, {sku: products[sku] for sku in skus}))
    (here, here_products), (pooled, pooled_products) = results
    chunks = -(-here.read // 37)
    assert made[0].sent == 0
    assert 0 < made[1].sent < chunks  # some chunks judged in the worker, some here
    assert pooled.rejections == here.rejections
    assert [r.position for r in pooled.rejections] == sorted(r.position for r in here.rejections)
    assert {r.field for r in pooled.rejections} == {"id", "price"}
    counts = ("read", "created", "changed", "unchanged", "rejected", "bundles_changed")
    assert [getattr(pooled, c) for c in counts] == [getattr(here, c) for c in counts]
    assert pooled_products == here_products
    assert len(pooled_products) == here.created > 0


class _NoProcesses:
    """A process pool whose processes fail to start (as at a process limit): every submission
    after the first `starts` ones."""

    starts = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.submitted = 0

    def submit(self, *args: object) -> Future[None]:
        self.submitted += 1
        if self.submitted > self.starts:
            raise OSError(11, "Resource temporarily unavailable")
        started: Future[None] = Future()
        started.set_result(None)
        return started

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


@pytest.mark.parametrize("starts", [0, 1], ids=["at the warm-up", "at the first chunk sent"])
async def test_workers_that_cannot_start_leave_the_judging_here(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, starts: int
) -> None:
    chunk = _chunk(200)
    expected = judge(chunk, "USD", NOW, "line")
    judges = Judges("USD", NOW, "line", workers=2, pool_min=1)
    monkeypatch.setattr(_NoProcesses, "starts", starts)
    monkeypatch.setattr(judging, "ProcessPoolExecutor", _NoProcesses)
    with caplog.at_level(logging.WARNING, logger=judging.__name__):
        results = [await judges.judge(chunk) for _ in range(3)]
    judges.close()
    assert judges.sent == 0
    assert judges.in_flight == 1
    assert "Resource temporarily unavailable" in caplog.text
    for judged in results:
        assert _frames(judged) == _frames(expected)
        assert judged.rejected == expected.rejected


def test_worker_counts_are_checked() -> None:
    assert judging.worker_count(0) == 0
    assert judging.worker_count(3) == 3
    assert 0 <= judging.worker_count(None) <= judging.DEFAULT_MAX_WORKERS
    with pytest.raises(ValueError, match="expected 0 to 32, got -1"):
        judging.worker_count(-1)
    with pytest.raises(ValueError, match="got 33"):
        judging.worker_count(33)
