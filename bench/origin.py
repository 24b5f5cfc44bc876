"""Origin benchmark: the bundle endpoint against a bare Redis GET, side by side.

``python -m bench.origin [--short] [--strict]``

1. Start a fresh `redis-server` and seed the demo catalog (5,000 SKUs, every bundle built).
2. Serve the origin as `make run` does (``python -m shelfedge origin``, uvicorn) and, next to it,
   the baseline (`bench.baseline_apps redis-get`: bare Starlette, one Redis GET of the same
   stored envelope per request, same uvicorn settings).
3. Load both with the same keep-alive load generator (its own process) at a fixed concurrency
   for alternating rounds: the saturated throughput, p50 and p99.
4. Then offer both the same fixed rate (well under either's capacity) and measure latency there:
   the p99 a shopper's cache miss sees under ordinary load, free of closed-loop queueing.

Targets: origin/baseline throughput >= 0.7; origin p99 <= 10 ms at the fixed offered rate.
It must never benchmark a Redis or origin it did not start.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bench.ab import Contender, alternate, round_ratios_line
from bench.loadgen import LoadSpec
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
from bench.servers import OriginServer, RedisGetBaseline
from fragments.ids import CONTROL_VARIANT, FragmentKey
from origin.core import keys
from shelfedge.localstack import RedisServer

BUNDLE = FragmentKey("home-hero", "everyone", CONTROL_VARIANT, "en-US")
THROUGHPUT_RATIO_TARGET = 0.7
P99_TARGET_MS = 10.0


@dataclass(frozen=True, slots=True)
class Plan:
    """How long and how hard to run (full or short mode)."""

    connections: int
    rounds: int
    round_s: float
    warmup_s: float
    offered_rate: float
    """Requests/s for the latency phase (both servers get the same)."""
    latency_s: float

    @classmethod
    def for_options(cls, options: BenchOptions) -> Plan:
        if options.short:
            return cls(connections=32, rounds=2, round_s=3.0, warmup_s=1.0,
                       offered_rate=500.0, latency_s=3.0)  # fmt: skip
        return cls(connections=32, rounds=4, round_s=10.0, warmup_s=2.0,
                   offered_rate=500.0, latency_s=10.0)  # fmt: skip


def measure(options: BenchOptions) -> list[Target]:
    plan = Plan.for_options(options)
    path = BUNDLE.bundle_path()
    with RedisServer() as redis:
        report = asyncio.run(seed_catalog(redis.url))
        say(seeded_line(report))
        with (
            OriginServer(redis.url, probe_path=path) as origin,
            RedisGetBaseline(redis.url, keys.bundle_key(BUNDLE)) as baseline,
        ):
            heading(
                f"throughput: {plan.connections} keep-alive connections, {plan.rounds} rounds "
                f"of {plan.round_s:g} s each, alternating"
            )
            a, b = alternate(
                Contender("origin /v1/bundles", _spec(origin.port, path, plan)),
                Contender("baseline redis GET", _spec(baseline.port, "/raw", plan)),
                plan.rounds,
            )
            say(a.line())
            say(b.line())
            throughput = ratio(a.requests_per_second, b.requests_per_second, "origin throughput")
            ratio_line("origin/baseline req/s", throughput, a.label, b.label)
            say(round_ratios_line(a, b))
            queueing_ms = 1000.0 * plan.connections / a.requests_per_second
            say(
                f"note: saturated, latency is mostly queueing: {plan.connections} connections / "
                f"{a.requests_per_second:.0f} req/s = {queueing_ms:.1f} ms mean (Little's law); "
                "the p99 target is checked at a fixed offered rate below"
            )
            heading(
                f"latency at a fixed offered rate of {plan.offered_rate:g} req/s "
                f"({plan.connections} connections, {plan.latency_s:g} s each, alternating)"
            )
            la, lb = alternate(
                Contender(a.label, _spec(origin.port, path, plan, plan.offered_rate)),
                Contender(b.label, _spec(baseline.port, "/raw", plan, plan.offered_rate)),
                2,
            )
            say(la.line())
            say(lb.line())
            p99_ratio = ratio(la.latency_ms.p99, lb.latency_ms.p99, "origin latency")
            ratio_line("origin/baseline p99 at fixed rate", p99_ratio, la.label, lb.label)
    return [
        at_least("origin/baseline throughput", throughput, THROUGHPUT_RATIO_TARGET),
        at_most(
            f"origin p99 at {plan.offered_rate:g} req/s offered",
            la.latency_ms.p99,
            P99_TARGET_MS,
            "ms",
        ),
    ]


def _spec(port: int, path: str, plan: Plan, rate: float | None = None) -> LoadSpec:
    return LoadSpec(
        port=port,
        path=path,
        connections=plan.connections,
        duration_s=plan.round_s if rate is None else plan.latency_s,
        warmup_s=plan.warmup_s,
        rate=rate,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        "bench.origin", "origin bundle endpoint vs a bare Redis GET", measure, argv
    )


if __name__ == "__main__":
    sys.exit(main())
