"""Invalidation benchmark: the consumer pipeline against raw Kafka consumption, on one broker.

``python -m bench.invalidation [--short] [--strict] [--broker tansu|apache-kafka]``

One broker of the chosen engine (Tansu, `KafkaBroker`, by default; or a real Apache Kafka node,
`ApacheKafka`) and one seeded `redis-server` for every phase:

(a) the limit: a plain aiokafka group member fetches a backlog of N realistic events
    (`DemoEventStream`, default mix) and does nothing with them;
(b) the product: `InvalidationConsumer` + `InvalidationPipeline` (no purgers) consume the same
    backlog in another group: validate, dedupe, version-gate, apply, impact, recompute;
    (b)/(a) is the ratio. Both are timed from partition assignment to the N-th record;
(c) latency: a separate process offers 2,000 events/s of the realistic mix for a fixed time;
    the consumer (100 ms window) and one purge worker with a fake purger run here; per purged
    tag, purge-issued time minus the producer timestamp of the oldest event it covers; the CPU
    per record of the consumer (with its purge worker) and of Redis are printed beside it;
(d) suppression: 10,000 count-only stock-noise events (`STOCK_NOISE_ONLY`), consumed twice
    from the same freshly seeded state, with `suppress_unchanged` False then True, in windows
    of 200 events (2,000 events/s x 100 ms); purges enqueued per 10,000 events;
(e) tracing overhead: a backlog whose records carry trace context (1 % sampled) consumed by the
    pipeline from the same seeded state with tracing off and on at 1 % sampling, in alternating
    runs (`bench.tracing_overhead`); the cost is the CPU per record it adds (consumer process and
    Redis together: what bounds throughput on a CPU-bound machine).

(f) scale-out: the same backlog consumed by one `shelfedge consume` process, then by two in one
    group (`bench.consumer_group`), side by side (records/s and CPU per record).

Targets: (b)/(a) >= 0.5; (c) p99 <= 100 ms; (d) suppression removes >= 90 % of purges;
(e) tracing at 1 % costs <= 5 % of pipeline throughput.
It must never use a broker or Redis it did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.consumer_group import GroupRun, run_group, run_growing
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
from bench.tracing_overhead import SwitchedTracing, produce_traced_backlog
from fragments import topics
from fragments.topics import ALL_TOPICS
from invalidation.consumer import WINDOWS_IN_FLIGHT
from invalidation.window_policy import DEFAULT_WINDOW_MS
from origin.core.redis_client import redis_client
from shelfedge.localstack import KafkaBroker, RedisServer, ensure_topics
from shelfedge.localstack.apache_kafka import ApacheKafka

BROKERS = ("tansu", "apache-kafka")

THROUGHPUT_RATIO_TARGET = 0.5
P99_TARGET_MS = 100.0
SUPPRESSION_TARGET = 0.9
TRACING_COST_TARGET = 0.05
OFFERED_RATE = 2000.0
WINDOW_MS = DEFAULT_WINDOW_MS
"""The consumer's coalescing window in (b), (c), (e) and (f) unless ``--window-ms`` says
otherwise: the product's default."""
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
    group_backlog: int
    """Events in the backlog of (f) (larger: a second member joins a few seconds late)."""
    tracing_pairs: int
    """Pairs of runs (off and on, the order flipping) in (e)."""
    broker: str = "tansu"
    window_ms: int = WINDOW_MS
    """The consumer's coalescing window, the same in every phase but (d)'s."""

    @classmethod
    def for_options(
        cls, options: BenchOptions, broker: str = "tansu", window_ms: int = WINDOW_MS
    ) -> Plan:
        if options.short:
            return cls(10_000, 6.0, 30_000, 2, broker, window_ms)
        return cls(200_000, 30.0, 100_000, 3, broker, window_ms)


@dataclass(frozen=True, slots=True)
class Figures:
    raw_rate: float
    pipeline_rate: float
    latency_ms: Summary
    purges_without: int
    purges_with: int
    untraced_rate: float
    traced_rate: float


def measure(
    options: BenchOptions, broker: str = "tansu", window_ms: int = WINDOW_MS
) -> list[Target]:
    figures = asyncio.run(_measure(Plan.for_options(options, broker, window_ms)))
    suppressed = 1.0 - ratio(figures.purges_with, figures.purges_without, "noise purges")
    return [
        at_least(
            "pipeline/raw consumption throughput",
            ratio(figures.pipeline_rate, figures.raw_rate, "pipeline throughput"),
            THROUGHPUT_RATIO_TARGET,
        ),
        at_most(
            f"event->purge p99 at {OFFERED_RATE:g} ev/s, {window_ms} ms window",
            figures.latency_ms.p99,
            P99_TARGET_MS,
            "ms",
        ),
        at_least("purges removed by suppression (noise)", suppressed, SUPPRESSION_TARGET),
        at_most(
            "pipeline throughput (records per CPU-second) lost to tracing at 1 %",
            1.0 - ratio(figures.traced_rate, figures.untraced_rate, "tracing throughput"),
            TRACING_COST_TARGET,
        ),
    ]


@contextmanager
def _broker(engine: str) -> Iterator[str]:
    """A broker of `engine` started for this run; yields its bootstrap address."""
    if engine == "apache-kafka":
        with ApacheKafka() as node:
            yield node.bootstrap
        return
    with KafkaBroker() as tansu:
        yield tansu.bootstrap


async def _measure(plan: Plan) -> Figures:
    with RedisServer() as redis_server, _broker(plan.broker) as bootstrap:
        say(f"broker: {plan.broker} at {bootstrap}; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs (the machine may be shared)")  # fmt: skip
        await ensure_topics(bootstrap, ALL_TOPICS)
        seeded = await seed_catalog(redis_server.url)
        say(seeded_line(seeded))
        redis = redis_client(
            redis_server.url, timeout_ms=250, per_reply_timeout=False
        )  # as invalidation.service builds the consumer's client
        # The bench starts one node of its own (its CPU meter reads that server's INFO cpu).
        assert isinstance(redis, Redis)
        try:
            raw_rate, pipeline_rate = await _throughput(bootstrap, redis, plan)
            latency = await _latency(bootstrap, redis, plan)
            without, with_ = await _suppression(bootstrap, redis, redis_server.url)
            untraced, traced = await _tracing(bootstrap, redis, redis_server.url, plan)
            await _scale_out(bootstrap, redis, redis_server.url, plan)
        finally:
            await redis.aclose()
    return Figures(raw_rate, pipeline_rate, latency, without, with_, untraced, traced)


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
    run = ConsumerRun(RunConfig(bootstrap, "bench-pipeline", window_ms=plan.window_ms), redis,
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
        f"{plan.window_ms} ms window, one purge worker"
    )
    group = "bench-latency"
    await start_group_at_end(bootstrap, group, SOURCE_TOPICS)
    config = RunConfig(
        bootstrap, group, window_ms=plan.window_ms, enqueue_purges=True, purge_worker=True
    )
    run = ConsumerRun(config, redis, expected_records=sys.maxsize)
    cpu = CpuMeter(redis)
    await run.start()
    await cpu.start()
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
    used = await cpu.stop(max(totals.unique_records, 1))
    _check_clean(totals, "(c)")
    purger = run.purger
    if not purger.latencies_ms:
        raise BenchRunError("(c): no purge was issued; the realistic mix must change bundles")
    latency = Summary.of(purger.latencies_ms)
    say(f"offered {source.events} events in {source.seconds:.1f} s ({source.rate:.0f} events/s)")
    say(f"    {_totals_text(totals)}")
    say(f"    consumer and purge worker: {used}")
    say(f"purged {purger.tags} tags in {purger.requests} requests")
    say(f"event -> purge  p50 {latency.p50:7.1f} ms  p99 {latency.p99:7.1f} ms  "
        f"max {latency.max:7.1f} ms  ({latency.count} tags)")  # fmt: skip
    ratio_line(
        "event->purge p99 / window",
        latency.p99 / plan.window_ms,
        "p99 latency",
        f"{plan.window_ms} ms coalescing window",
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


async def _tracing(bootstrap: str, redis: Redis, redis_url: str, plan: Plan) -> tuple[float, float]:
    """(e): CPU per record (this process + Redis) with tracing off and on, in alternating runs;
    returns the two as records per CPU-second (on a CPU-bound machine, throughput follows it).
    Wall-clock rates are printed too: at this size they mostly measure group joins and fetch
    timing."""
    events = plan.backlog
    order = [
        traced for pair in range(plan.tracing_pairs) for traced in (pair % 2 == 1, pair % 2 == 0)
    ]
    heading(
        f"(e) tracing overhead: {events} events with trace context (1 % sampled), the pipeline "
        f"with tracing off and on at 1 % sampling, {len(order)} runs alternating"
    )
    groups = [f"bench-{'traced' if traced else 'untraced'}-{i}" for i, traced in enumerate(order)]
    for group in groups:
        await start_group_at_end(bootstrap, group, SOURCE_TOPICS)
    spec = StreamSpec("default", seed=17, version_base=4 * VERSION_GAP, id_prefix="bench-e")
    backlog = await produce_traced_backlog(bootstrap, spec, events)
    say(f"produced {backlog.events} events ({backlog.sampled} sampled) in {backlog.seconds:.1f} s")
    cpu_us = {False: 0.0, True: 0.0}
    records_of = {False: 0, True: 0}
    tracing = SwitchedTracing()
    cpu = CpuMeter(redis)
    for traced, group in zip(order, groups, strict=True):
        await seed_catalog(redis_url, flush=True)
        if traced:
            tracing.on()
        run = ConsumerRun(RunConfig(bootstrap, group, window_ms=plan.window_ms), redis, events)
        await cpu.start()
        assigned = await run.start()
        try:
            finished = await run.wait_processed(PHASE_TIMEOUT_S)
        finally:
            await run.stop()
            tracing.off()
        records = run.totals.unique_records
        used = await cpu.stop(records)
        _check_clean(run.totals, "(e)")
        cpu_us[traced] += (used.process_us + used.redis_us) * records
        records_of[traced] += records
        label = "tracing on (1 %)" if traced else "tracing off     "
        say(f"{label}  {records:7d} records in {finished - assigned:6.2f} s  "
            f"{records / (finished - assigned):9.0f} records/s  ({used})")  # fmt: skip
    say(f"    spans made with tracing on: {tracing.exporter.spans}")
    per_cpu_second = {t: 1e6 * records_of[t] / cpu_us[t] for t in (False, True)}
    ratio_line(
        "traced/untraced records per CPU-second",
        ratio(per_cpu_second[True], per_cpu_second[False], "tracing throughput"),
        "tracing on",
        "off",
    )
    return per_cpu_second[False], per_cpu_second[True]


async def _scale_out(bootstrap: str, redis: Redis, redis_url: str, plan: Plan) -> None:
    heading(
        f"(f) one `shelfedge consume` process against two in one group: a backlog of "
        f"{plan.group_backlog} events each, from a fresh seed"
    )
    runs: list[GroupRun] = []
    for count in (1, 2):
        spec = StreamSpec(
            "default", seed=17, version_base=(4 + count) * VERSION_GAP, id_prefix=f"bench-e{count}"
        )

        async def one(backlog: int, count: int = count, spec: StreamSpec = spec) -> GroupRun:
            return await run_group(
                bootstrap,
                redis,
                redis_url,
                processes=count,
                backlog=backlog,
                spec=spec,
                window_ms=plan.window_ms,
                timeout=PHASE_TIMEOUT_S,
            )

        runs.append(await run_growing(one, plan.group_backlog, say))
    say("                 records/s   consumer CPU/record   Redis CPU/record")
    for run in runs:
        say(f"{run.processes} process{'es' if run.processes > 1 else '  '}     "
            f"{run.rate:9.0f}   {run.consumer_us:12.1f} us     {run.redis_us:10.1f} us  "
            f"({run.records} records in {run.seconds:.2f} s once stable)")  # fmt: skip
    ratio_line("two processes / one", ratio(runs[1].rate, runs[0].rate, "scale-out"), "two", "one")


def _check_clean(totals: PipelineTotals, phase: str) -> None:
    if totals.dead_letters:
        reasons = totals.dead_letter_reasons
        raise BenchRunError(f"{phase}: {totals.dead_letters} events dead-lettered, e.g. {reasons}")


def _totals_text(t: PipelineTotals) -> str:
    return (
        f"{t.batches} batches (mean {t.records / max(t.batches, 1):.0f} events, "
        f"{t.redelivered} redelivered), "
        f"{t.applied} applied, {t.duplicates} duplicate, {t.stale} stale, "
        f"{t.collapsed} not sent to Redis (collapsed), "
        f"{t.recomputed} recomputes, {t.changed} bundles changed, "
        f"{t.purges_enqueued} purges enqueued, {t.busy_seconds:.1f} s in process()"
    )


def _window_ms(text: str) -> int:
    """``--window-ms``: whole milliseconds, 1 to 10,000."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of milliseconds: {text!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be 1 to 10000 ms, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--broker", choices=BROKERS, default="tansu")
    parser.add_argument("--window-ms", type=_window_ms, default=WINDOW_MS)
    known, rest = parser.parse_known_args(argv)
    return run_benchmark(
        "bench.invalidation",
        f"invalidation pipeline vs raw consumption, latency, suppression, scale-out"
        f" ({known.broker}, {known.window_ms} ms window)",
        lambda options: measure(options, known.broker, known.window_ms),
        rest,
    )


if __name__ == "__main__":
    sys.exit(main())
