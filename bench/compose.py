"""Composition benchmark: a 60 KB page with three slots, CPU per page and time to bytes over HTTP.

``python -m bench.compose [--short] [--strict]``

1. CPU: `bench.compose_inner.run` composes the page (three cached slots sized as slots.toml
   sizes them: 100, 60 and 40 candidates) and passes the same chunks through, in this CPython
   process and inside Pyodide under Node (`tests.support.pyodide.PyodideRunner`), in
   alternating rounds; both must compose alike (same hash). Prints p50/p99 of the CPU added
   per page over the pass-through. Target: Pyodide p99 <= 1.5 ms.
2. HTTP: the page served by an upstream (the real origin app over a seeded Redis, plus the
   page) through two local edges (`bench.compose_apps`): one composing, one passing pages
   through. Sequential GETs, the contenders interleaved page by page (each first in turn, so
   the machine's load weighs on all alike), slots cached: time to first byte and to
   last byte of the composed page against the pass-through (target: TTFB ratio <= 1.2), and
   page-complete time against the client-fetch version (the same page with "Loading" hosts,
   then its three ``/se/slot`` requests in parallel, as its script would make them).

It must never benchmark a service it did not start.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import httpx

from bench.ab import alternate_in_process, json_call
from bench.compose_apps import CLIENT_PAGE, COMPOSED_PAGE
from bench.compose_inner import SLOTS
from bench.compose_inner import run as run_compose_loop
from bench.edge_fixture import build_fixture
from bench.errors import BenchRunError, BenchSetupError
from bench.report import (
    BenchOptions,
    Target,
    at_most,
    heading,
    ratio,
    ratio_line,
    run_benchmark,
    say,
)
from bench.seeding import seed_catalog, seeded_line
from bench.servers import AppServer
from bench.stats import Summary
from fragments.slots import load_slots
from shelfedge.localstack import RedisServer
from tests.support.pyodide import PyodideError, PyodideRunner, prepare_pyodide_wheels

PYODIDE_P99_TARGET_US = 1500.0
TTFB_RATIO_TARGET = 1.2
PYODIDE_PACKAGES = ("edge", "fragments", "bench")
SEGMENT_SECRET = "shelfedge-bench-compose-secret"
VISITOR = {"cookie": "se_vid=" + "5e1fed9e" * 4, "accept-encoding": "identity"}


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    iterations: int
    warmup: int
    http_rounds: int
    pages_per_round: int

    @classmethod
    def for_options(cls, options: BenchOptions) -> Plan:
        if options.short:
            return cls(rounds=2, iterations=300, warmup=50, http_rounds=2, pages_per_round=30)
        return cls(rounds=4, iterations=2000, warmup=200, http_rounds=4, pages_per_round=150)


class UpstreamServer(AppServer):
    """The origin app plus the benchmark's pages (`bench.compose_apps upstream`)."""

    display_name = "bench-compose-upstream"

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        super().__init__("/healthz")

    def _command(self, port: int) -> tuple[str, list[str]]:
        args = ["upstream", "--port", str(port), "--redis-url", self.redis_url]
        return "bench.compose_apps", [*args, "--secret", SEGMENT_SECRET]


class ComposeEdgeServer(AppServer):
    """A local edge composing pages (`bench.compose_apps edge`)."""

    display_name = "bench-compose-edge"
    compose = True

    def __init__(self, origin_url: str) -> None:
        self.origin_url = origin_url
        super().__init__("/se/metrics")

    def _command(self, port: int) -> tuple[str, list[str]]:
        args = ["edge", "--port", str(port), "--origin-url", self.origin_url]
        args += ["--secret", SEGMENT_SECRET]
        return "bench.compose_apps", [*args, *([] if self.compose else ["--no-compose"])]


class PassThroughEdgeServer(ComposeEdgeServer):
    """The same local edge passing pages through (``--no-compose``)."""

    display_name = "bench-pass-through-edge"
    compose = False


def measure(options: BenchOptions) -> list[Target]:
    plan = Plan.for_options(options)
    cpython, pyodide = _cpu(plan)
    ratio_line(
        "pyodide/cpython compose CPU p99",
        ratio(pyodide.p99, cpython.p99, "compose p99"),
        "Pyodide",
        "CPython",
    )
    ttfb_ratio = _http(plan)
    return [
        at_most("pyodide compose CPU added p99", pyodide.p99, PYODIDE_P99_TARGET_US, "us"),
        at_most("composed/pass-through TTFB p50", ttfb_ratio, TTFB_RATIO_TARGET),
    ]


def _cpu(plan: Plan) -> tuple[Summary, Summary]:
    fixture = build_fixture(time.time())
    slots = load_slots()
    payload_doc = fixture.loop_payload(plan.iterations, plan.warmup)
    candidates = [slots.slots[s].candidates for s in SLOTS]
    payload = payload_doc[:-1] + f', "candidates": {candidates}}}'
    heading(
        f"CPU: compose a 60 KB page with three cached slots ({candidates} candidates) minus "
        f"passing it through, {plan.rounds} rounds x {plan.iterations} pages per runtime"
    )
    try:
        prepare_pyodide_wheels()
        with PyodideRunner(packages=PYODIDE_PACKAGES, call_timeout=300.0) as runner:
            info = runner.info
            say(
                f"pyodide {info.pyodide_version} (Python {info.python_version}) under Node; "
                f"CPython {sys.version.split()[0]}"
            )
            runtimes: dict[str, Callable[[str], str]] = {
                "CPython": run_compose_loop,
                "Pyodide": lambda p: runner.call("bench.compose_inner:run", p),
            }
            rounds = alternate_in_process(
                {name: partial(json_call, run, payload) for name, run in runtimes.items()},
                plan.rounds,
                lambda result: Summary.from_dict(result["latency_us"]),
            )
    except PyodideError as exc:
        raise BenchSetupError(f"Pyodide under Node is not usable: {exc}") from exc
    hashes = {r["html_sha256"] for results in rounds.values() for r in results}
    if len(hashes) != 1:
        raise BenchRunError(f"CPython and Pyodide composed differently: {sorted(hashes)}")
    first = rounds["CPython"][0]
    say(f"page {first['page_bytes']} B, composed {first['composed_bytes']} B")
    say("clocks: " + ", ".join(f"{n} {rounds[n][0]['clock']}" for n in runtimes))
    summaries = []
    for name in runtimes:
        summary = Summary.of([x for r in rounds[name] for x in r["samples_us"]])
        rewrite = Summary.from_dict(rounds[name][-1]["rewrite_only_us"])
        say(
            f"{name:<8} CPU added per page: p50 {summary.p50:8.1f} us  p99 {summary.p99:8.1f} us"
            f"  (of which the rewriter alone p50 {rewrite.p50:.1f} us)"
        )
        summaries.append(summary)
    return summaries[0], summaries[1]


@dataclass(frozen=True, slots=True)
class Timed:
    first_byte: float
    last_byte: float


async def _timed_get(client: httpx.AsyncClient, url: str) -> Timed:
    started = time.perf_counter()
    first = 0.0
    async with client.stream("GET", url, headers=VISITOR) as response:
        if response.status_code != 200:
            raise BenchRunError(f"GET {url}: {response.status_code}")
        async for chunk in response.aiter_raw():
            if chunk and not first:
                first = time.perf_counter() - started
    return Timed(first, time.perf_counter() - started)


async def _client_version(client: httpx.AsyncClient, edge: str) -> Timed:
    """The client-fetch page, then its slots in parallel (as its script would fetch them)."""
    started = time.perf_counter()
    page = await _timed_get(client, edge + CLIENT_PAGE)
    answers = await asyncio.gather(
        *(client.get(f"{edge}/se/slot/{slot}?page=/pages/big", headers=VISITOR) for slot in SLOTS)
    )
    if any(a.status_code != 200 for a in answers):
        raise BenchRunError(f"client-fetch slots answered {[a.status_code for a in answers]}")
    return Timed(page.first_byte, time.perf_counter() - started)


async def _http_rounds(plan: Plan, composing: str, passing: str) -> dict[str, list[Timed]]:
    contenders = {
        "composed": lambda c: _timed_get(c, composing + COMPOSED_PAGE),
        "pass-through": lambda c: _timed_get(c, passing + COMPOSED_PAGE),
        "client-fetch": lambda c: _client_version(c, composing),
    }
    results: dict[str, list[Timed]] = {name: [] for name in contenders}
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        warm = await client.get(composing + COMPOSED_PAGE, headers=VISITOR)
        warm = await client.get(composing + COMPOSED_PAGE, headers=VISITOR)
        statuses = [line.split()[2] for line in _timing_lines(warm.content)]
        if statuses != ["HIT"] * len(SLOTS):
            raise BenchRunError(f"the warm composed page's slots were {statuses}, not HITs")
        names = list(contenders)
        for index in range(plan.http_rounds * plan.pages_per_round):
            shift = index % len(names)  # page by page, each contender first in turn
            for name in names[shift:] + names[:shift]:
                results[name].append(await contenders[name](client))
    return results


def _timing_lines(body: bytes) -> list[str]:
    if b"<!-- shelfedge composed\n" not in body:
        return []
    comment = body.rsplit(b"<!-- shelfedge composed\n", 1)[1].split(b"-->")[0].decode()
    return comment.strip().splitlines()


def _http(plan: Plan) -> float:
    with RedisServer() as redis:
        report = asyncio.run(seed_catalog(redis.url))
        say()
        say(seeded_line(report))
        with (
            UpstreamServer(redis.url) as upstream,
            ComposeEdgeServer(upstream.base_url) as composing,
            PassThroughEdgeServer(upstream.base_url) as passing,
        ):
            heading(
                f"HTTP through the local edge: sequential GETs of the 60 KB page, slots cached, "
                f"{plan.http_rounds * plan.pages_per_round} pages per contender, interleaved"
            )
            results = asyncio.run(_http_rounds(plan, composing.base_url, passing.base_url))
    summaries: dict[str, tuple[Summary, Summary]] = {}
    for name, timed in results.items():
        first = Summary.of([t.first_byte * 1000 for t in timed])
        last = Summary.of([t.last_byte * 1000 for t in timed])
        summaries[name] = (first, last)
        say(
            f"{name:<13} first byte p50 {first.p50:7.2f} ms p99 {first.p99:7.2f} ms   "
            f"complete p50 {last.p50:7.2f} ms p99 {last.p99:7.2f} ms"
        )
    ttfb = ratio(summaries["composed"][0].p50, summaries["pass-through"][0].p50, "TTFB")
    ratio_line("composed/pass-through TTFB p50", ttfb, "composed", "pass-through")
    ratio_line(
        "composed/pass-through complete p50",
        ratio(summaries["composed"][1].p50, summaries["pass-through"][1].p50, "complete"),
        "composed",
        "pass-through",
    )
    ratio_line(
        "composed/client-fetch page complete p50",
        ratio(summaries["composed"][1].p50, summaries["client-fetch"][1].p50, "complete"),
        "composed",
        "client-fetch",
    )
    return ttfb


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        "bench.compose", "page composition (CPU under CPython and Pyodide, HTTP)", measure, argv
    )


if __name__ == "__main__":
    sys.exit(main())
