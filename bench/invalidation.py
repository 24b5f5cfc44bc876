"""Invalidation benchmark: the consumer pipeline against raw Kafka consumption, on one broker.

``python -m bench.invalidation [--short] [--strict]``

One Tansu broker (`KafkaBroker`) and one seeded `redis-server` for every phase:

(a) the limit: a plain aiokafka group member fetches a backlog of N realistic events
    (`DemoEventStream`, default mix) and does nothing with them;
(b) the product: `InvalidationConsumer` + `InvalidationPipeline` (no purgers) consume the same
    backlog in another group: validate, dedupe, version-gate, apply, impact, recompute;
    (b)/(a) is the ratio. Both are timed from partition assignment to the N-th record;
(c) latency: a separate process offers 2,000 events/s of the realistic mix for a fixed time;
    the consumer (100 ms window) and one purge worker with a fake purger run here; per purged
    tag, purge-issued time minus the producer timestamp of the oldest event it covers;
(d) suppression: 10,000 count-only stock-noise events (`STOCK_NOISE_ONLY`), consumed twice
    from the same freshly seeded state, with `suppress_unchanged` False then True, in windows
    of 200 events (2,000 events/s x 100 ms); purges enqueued per 10,000 events.

Targets: (b)/(a) >= 0.5; (c) p99 <= 250 ms; (d) suppression removes >= 90 % of purges.
It must never use a broker or Redis it did not start.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.cpu import CpuMeter
from bench.errors import BenchRunError
from bench.event_source import StreamSpec, produce_backlog, run_paced_source
from bench.kafka_tools import raw_consumption, start_group_at_end
from bench.pipeline_probe import ConsumerRun, PipelineTotals, RunConfig
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
from bench.seeding import seed_catalog, seeded_line
from bench.stats import Summary
from fragments import topics
from fragments.topics import ALL_TOPICS
from invalidation.consumer import WINDOWS_IN_FLIGHT
from origin.core.redis_client import redis_client
from shelfedge.localstack import KafkaBroker, RedisServer, ensure_topics

THROUGHPUT_RATIO_TARGET = 0.5
P99_TARGET_MS = 250.0
SUPPRESSION_TARGET = 0.9
OFFERED_RATE = 2000.0
WINDOW_MS = 100
NOISE_EVENTS = 10_000
NOISE_WINDOW_RECORDS = int(OFFERED_RATE * WINDOW_MS / 1000)
SOURCE_TOPICS = (topics.INVENTORY, topics.PRICE)
VERSION_GAP = 10_000_000
"""Version bases of successive streams are this far apart: no stream looks stale to the next."""
PHASE_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Plan:
    backlog: int
    """Events in the backlog of (a) and (b)."""
    latency_s: float
    """How long (c) offers 2,000 events/s."""

    @classmethod
    def for_options(cls, options: BenchOptions) -> Plan:
        if options.short:
            return cls(backlog=10_000, latency_s=6.0)
        return cls(backlog=200_000, latency_s=30.0)


@dataclass(frozen=True, slots=True)
class Figures:
    raw_rate: float
    pipeline_rate: float
    latency_ms: Summary
    purges_without: int
    purges_with: int


def measure(options: BenchOptions) -> list[Target]:
    figures = asyncio.run(_measure(Plan.for_options(options)))
    suppressed = 1.0 - ratio(figures.purges_with, figures.purges_without, "noise purges")
    return [
        at_least(
            "pipeline/raw consumption throughput",
            ratio(figures.pipeline_rate, figures.raw_rate, "pipeline throughput"),
            THROUGHPUT_RATIO_TARGET,
        ),
        at_most(
            f"event->purge p99 at {OFFERED_RATE:g} ev/s, {WINDOW_MS} ms window",
            figures.latency_ms.p99,
            P99_TARGET_MS,
            "ms",
        ),
        at_least("purges removed by suppression (noise)", suppressed, SUPPRESSION_TARGET),
    ]


async def _measure(plan: Plan) -> Figures:
    with RedisServer() as redis_server, KafkaBroker() as broker:
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        seeded = await seed_catalog(redis_server.url)
        say(seeded_line(seeded))
        redis = redis_client(
            redis_server.url, timeout_ms=250, per_reply_timeout=False
        )  # as invalidation.service builds the consumer's client
        # The bench starts one node of its own (its CPU meter reads that server's INFO cpu).
        assert isinstance(redis, Redis)
        try:
            raw_rate, pipeline_rate = await _throughput(broker.bootstrap, redis, plan)
            latency = await _latency(broker.bootstrap, redis, plan)
            without, with_ = await _suppression(broker.bootstrap, redis, redis_server.url)
        finally:
            await redis.aclose()
    return Figures(raw_rate, pipeline_rate, latency, without, with_)


async def _throughput(bootstrap: str, redis: Redis, plan: Plan) -> tuple[float, float]:
    heading(f"(a) raw consumption vs (b) the pipeline: a backlog of {plan.backlog} events")
    spec = StreamSpec("default", seed=7, version_base=VERSION_GAP, id_prefix="bench-backlog")
    seconds = await produce_backlog(bootstrap, spec, plan.backlog)
    say(f"produced {plan.backlog} events (default mix) in {seconds:.1f} s")
    cpu = CpuMeter(redis)
    await cpu.start()
    raw = await raw_consumption(bootstrap, "bench-raw", plan.backlog, PHASE_TIMEOUT_S)
    raw_cpu = await cpu.stop(raw.records)
    say(f"(a) raw aiokafka      {raw.records:7d} records in {raw.seconds:6.2f} s  "
        f"{raw.rate:9.0f} records/s  ({raw_cpu})")  # fmt: skip
    run = ConsumerRun(RunConfig(bootstrap, "bench-pipeline", window_ms=WINDOW_MS), redis,
                      plan.backlog)  # fmt: skip
    await cpu.start()
    assigned = await run.start()
    try:
        finished = await run.wait_processed(PHASE_TIMEOUT_S)
    finally:
        await run.stop()
    totals = run.totals
    pipeline_cpu = await cpu.stop(totals.unique_records)
    _check_clean(totals, "(b)")
    seconds = finished - assigned
    rate = totals.unique_records / seconds
    say(f"(b) pipeline          {totals.unique_records:7d} records in {seconds:6.2f} s  "
        f"{rate:9.0f} records/s  ({pipeline_cpu})")  # fmt: skip
    say(f"    {_totals_text(totals)}")
    budget_us = 1e6 / (THROUGHPUT_RATIO_TARGET * raw.rate)
    say(f"    at {THROUGHPUT_RATIO_TARGET:g} x (a) a record may cost {budget_us:.1f} us in all; "
        f"Redis alone spent {pipeline_cpu.redis_us:.1f} us and this process "
        f"{pipeline_cpu.process_us:.1f} us per record")  # fmt: skip
    ratio_line("pipeline/raw records/s", ratio(rate, raw.rate, "throughput"), "(b)", "(a)")
    return raw.rate, rate


async def _latency(bootstrap: str, redis: Redis, plan: Plan) -> Summary:
    heading(
        f"(c) event -> purge latency: {OFFERED_RATE:g} events/s offered for {plan.latency_s:g} s, "
        f"{WINDOW_MS} ms window, one purge worker"
    )
    group = "bench-latency"
    await start_group_at_end(bootstrap, group, SOURCE_TOPICS)
    config = RunConfig(
        bootstrap, group, window_ms=WINDOW_MS, enqueue_purges=True, purge_worker=True
    )
    run = ConsumerRun(config, redis, expected_records=sys.maxsize)
    await run.start()
    try:
        spec = StreamSpec("default", seed=11, version_base=2 * VERSION_GAP, id_prefix="bench-c")
        source = await asyncio.to_thread(
            run_paced_source, bootstrap, spec, OFFERED_RATE, plan.latency_s
        )
        run.expect(source.events)
        await run.wait_processed(PHASE_TIMEOUT_S)
        await run.wait_purges_drained(PHASE_TIMEOUT_S)
    finally:
        await run.stop()
    totals = run.totals
    _check_clean(totals, "(c)")
    purger = run.purger
    if not purger.latencies_ms:
        raise BenchRunError("(c): no purge was issued; the realistic mix must change bundles")
    latency = Summary.of(purger.latencies_ms)
    say(f"offered {source.events} events in {source.seconds:.1f} s ({source.rate:.0f} events/s)")
    say(f"    {_totals_text(totals)}")
    say(f"purged {purger.tags} tags in {purger.requests} requests")
    say(f"event -> purge  p50 {latency.p50:7.1f} ms  p99 {latency.p99:7.1f} ms  "
        f"max {latency.max:7.1f} ms  ({latency.count} tags)")  # fmt: skip
    ratio_line(
        "event->purge p99 / window",
        latency.p99 / WINDOW_MS,
        "p99 latency",
        f"{WINDOW_MS} ms coalescing window",
    )
    return latency


async def _suppression(bootstrap: str, redis: Redis, redis_url: str) -> tuple[int, int]:
    heading(
        f"(d) purges per {NOISE_EVENTS} count-only stock-noise events, without and with "
        f"content-hash suppression ({NOISE_WINDOW_RECORDS}-event windows)"
    )
    groups = {False: "bench-noise-unsuppressed", True: "bench-noise-suppressed"}
    for group in groups.values():
        await start_group_at_end(bootstrap, group, SOURCE_TOPICS)
    spec = StreamSpec("stock-noise", seed=13, version_base=3 * VERSION_GAP, id_prefix="bench-d")
    await produce_backlog(bootstrap, spec, NOISE_EVENTS)
    purges: dict[bool, int] = {}
    for suppress, group in groups.items():
        await seed_catalog(redis_url, flush=True)
        config = RunConfig(
            bootstrap,
            group,
            suppress_unchanged=suppress,
            enqueue_purges=True,
            window_ms=WINDOW_MS,
            max_in_flight=NOISE_WINDOW_RECORDS * WINDOWS_IN_FLIGHT,
        )
        run = ConsumerRun(config, redis, NOISE_EVENTS)
        started = await run.start()
        try:
            finished = await run.wait_processed(PHASE_TIMEOUT_S)
        finally:
            await run.stop()
        totals = run.totals
        _check_clean(totals, "(d)")
        purges[suppress] = totals.purges_enqueued
        label = "with suppression   " if suppress else "without suppression"
        say(f"{label}  {totals.purges_enqueued:6d} purges  ({totals.unique_records} events, "
            f"{totals.redelivered} redelivered, {totals.recomputed} recomputes, "
            f"{finished - started:.1f} s)")  # fmt: skip
    ratio_line(
        "suppressed/unsuppressed purges",
        ratio(purges[True], purges[False], "noise purges"),
        "with suppression",
        "without",
    )
    return purges[False], purges[True]


def _check_clean(totals: PipelineTotals, phase: str) -> None:
    if totals.dead_letters:
        reasons = totals.dead_letter_reasons
        raise BenchRunError(f"{phase}: {totals.dead_letters} events dead-lettered, e.g. {reasons}")


def _totals_text(t: PipelineTotals) -> str:
    return (
        f"{t.batches} batches (mean {t.records / max(t.batches, 1):.0f} events, "
        f"{t.redelivered} redelivered), "
        f"{t.applied} applied, {t.duplicates} duplicate, {t.stale} stale, "
        f"{t.recomputed} recomputes, {t.changed} bundles changed, "
        f"{t.purges_enqueued} purges enqueued, {t.busy_seconds:.1f} s in process()"
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        "bench.invalidation",
        "invalidation pipeline vs raw consumption, latency, suppression",
        measure,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
