"""Edge benchmark: the per-request decision under CPython and Pyodide, and the local edge's HTTP.

``python -m bench.edge [--short] [--strict]``

1. Decision: `bench.edge_inner.run` times `handle_slot` + `drive_sync` on a hot in-memory
   cache holding a decoded 200-candidate bundle (rerank 200 -> 12, assemble), in this CPython
   process and inside Pyodide under Node (`tests.support.pyodide.PyodideRunner`), in alternating
   rounds. Both must produce the same HTML (same hash). Prints p50/p99 in microseconds for both
   and the Pyodide/CPython ratio. Targets: Pyodide p50 <= 1 ms, p99 <= 3 ms.
2. HTTP: the local edge (``python -m shelfedge edge``) in front of a real origin and seeded Redis,
   loaded with cache hits at 50 keep-alive connections, against a bare uvicorn/Starlette endpoint
   answering a static body of the same size (the edge's ~7 KB slot HTML), in alternating rounds.
   Prints req/s, p50, p99 for both and the ratio; the edge's own counters must show the load was
   served from its cache (HIT share >= 99 %, else the run is broken).
3. Worker start-up (`bench.worker_startup`): in a fresh Pyodide under Node, after Pyodide has
   booted, the import of the modules the Worker ships (`tools.workerd.build_worker`) and its
   slot config, in CPU milliseconds beside Cloudflare's 1 s start-up limit (target).

It must never benchmark a service it did not start.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.ab import Contender, alternate, alternate_in_process, json_call, round_ratios_line
from bench.edge_fixture import EdgeFixture, build_fixture
from bench.edge_inner import run as run_decision_loop
from bench.errors import BenchRunError, BenchSetupError
from bench.loadgen import LoadSpec
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
from bench.servers import EdgeServer, OriginServer, StaticBaseline, http_get
from bench.stats import Summary
from shelfedge.localstack import RedisServer
from tests.support.pyodide import PyodideError, PyodideRunner, prepare_pyodide_wheels
from tests.support.workerd import REPO_ROOT
from tools.workerd.build_worker import module_names, worker_modules

PYODIDE_P50_TARGET_US = 1000.0
PYODIDE_P99_TARGET_US = 3000.0
CLOUDFLARE_STARTUP_LIMIT_MS = 1000.0
"""Cloudflare refuses a Worker whose start-up (the snapshotted top-level import) takes more."""
WORKERD_ONLY_MODULES = ("edge.adapters.cloudflare", "edge.adapters.workers_compose")
"""Shipped modules that import workerd's ``workers`` SDK or ``pyodide.ffi`` JS objects."""
HIT_SHARE_FLOOR = 0.99
PYODIDE_PACKAGES = ("edge", "fragments", "bench")
SEGMENT_SECRET = "shelfedge-bench-segment-secret"
SLOT_PATH = "/se/slot/home-hero"
_HIT_COUNTER = re.compile(r'^shelfedge_edge_requests_total\{cache="([A-Z]+)"\} ([0-9.e+]+)$', re.M)


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    iterations: int
    """Timed decisions per round and runtime."""
    warmup: int
    connections: int
    http_rounds: int
    round_s: float
    warmup_s: float
    startup_runs: int

    @classmethod
    def for_options(cls, options: BenchOptions) -> Plan:
        if options.short:
            return cls(rounds=2, iterations=2000, warmup=300, connections=50,
                       http_rounds=2, round_s=3.0, warmup_s=1.0, startup_runs=1)  # fmt: skip
        return cls(rounds=4, iterations=10_000, warmup=1000, connections=50,
                   http_rounds=4, round_s=10.0, warmup_s=2.0, startup_runs=3)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LoopResult:
    """One runtime's timed decisions over all rounds."""

    runtime: str
    samples_us: tuple[float, ...]
    html_sha256: str
    shown: int
    candidates: int
    html_bytes: int

    @property
    def latency_us(self) -> Summary:
        return Summary.of(self.samples_us)

    def line(self) -> str:
        lat = self.latency_us
        return (
            f"{self.runtime:<9} p50 {lat.p50:8.1f} us  p99 {lat.p99:8.1f} us  "
            f"mean {lat.mean:8.1f} us  ({lat.count} decisions: {self.candidates} candidates -> "
            f"{self.shown} shown, {self.html_bytes} B HTML)"
        )


def measure(options: BenchOptions) -> list[Target]:
    plan = Plan.for_options(options)
    cpython, pyodide = _decision_loops(plan)
    say(cpython.line())
    say(pyodide.line())
    ratio_line(
        "pyodide/cpython decision p50",
        ratio(pyodide.latency_us.p50, cpython.latency_us.p50, "decision p50"),
        "Pyodide",
        "CPython",
    )
    ratio_line(
        "pyodide/cpython decision p99",
        ratio(pyodide.latency_us.p99, cpython.latency_us.p99, "decision p99"),
        "Pyodide",
        "CPython",
    )
    startup_cpu_ms = _worker_startup(plan)
    _http(plan)
    return [
        at_most("pyodide decision p50", pyodide.latency_us.p50, PYODIDE_P50_TARGET_US, "us"),
        at_most("pyodide decision p99", pyodide.latency_us.p99, PYODIDE_P99_TARGET_US, "us"),
        at_most(
            "worker start-up CPU under pyodide", startup_cpu_ms, CLOUDFLARE_STARTUP_LIMIT_MS, "ms"
        ),
    ]


def _worker_startup(plan: Plan) -> float:
    """The Worker's own import cost in fresh Pyodides (after boot); the largest CPU is returned
    and printed beside Cloudflare's start-up limit."""
    modules = [
        name
        for name in module_names(REPO_ROOT, worker_modules(REPO_ROOT))
        if name not in WORKERD_ONLY_MODULES
    ]
    heading(
        f"worker start-up: import of the {len(modules)} modules the Worker ships (less "
        f"{', '.join(WORKERD_ONLY_MODULES)}, which need workerd) + slot config, in "
        f"{plan.startup_runs} fresh Pyodide(s) after boot"
    )
    payload = json.dumps({"modules": modules})
    cpu_ms: list[float] = []
    try:
        for _ in range(plan.startup_runs):
            with PyodideRunner(packages=PYODIDE_PACKAGES, call_timeout=120.0) as runner:
                result = json.loads(runner.call("bench.worker_startup:run", payload))
            if result["already_loaded"]:
                raise BenchRunError(f"already imported before timing: {result['already_loaded']}")
            cpu_ms.append(float(result["cpu_ms"]))
            say(
                f"import + slot config: {result['wall_ms']:.1f} ms wall, {result['cpu_ms']:.1f} ms "
                f"CPU (standard library {result['stdlib_cpu_ms']:.1f} ms, the Worker's own "
                f"modules and slot config {result['own_cpu_ms']:.1f} ms; "
                f"{result['modules_loaded']} modules loaded, {result['slots']} slots); "
                f"slowest imports: {', '.join(reversed(result['slowest']))}"
            )
    except PyodideError as exc:
        raise BenchSetupError(f"Pyodide under Node is not usable: {exc}") from exc
    worst = max(cpu_ms)
    say(
        f"worker start-up CPU {worst:.1f} ms (worst of {len(cpu_ms)}) beside Cloudflare's "
        f"start-up limit of {CLOUDFLARE_STARTUP_LIMIT_MS:.0f} ms CPU: "
        f"{worst / CLOUDFLARE_STARTUP_LIMIT_MS:.1%} of it"
    )
    return worst


def _decision_loops(plan: Plan) -> tuple[LoopResult, LoopResult]:
    fixture = build_fixture(time.time())
    payload = fixture.loop_payload(plan.iterations, plan.warmup)
    heading(
        f"decision: handle_slot + drive_sync, hot cache, {len(fixture.bundle.candidates)} "
        f"candidates -> {fixture.bundle.rerank.shown}, {plan.rounds} rounds x "
        f"{plan.iterations} per runtime, alternating"
    )
    try:
        prepare_pyodide_wheels()
        with PyodideRunner(packages=PYODIDE_PACKAGES, call_timeout=300.0) as runner:
            info = runner.info
            say(
                f"pyodide {info.pyodide_version} (Python {info.python_version}) under Node, "
                f"loaded in {info.load_seconds:.1f} s; CPython {sys.version.split()[0]}"
            )
            runtimes: dict[str, Callable[[str], str]] = {
                "CPython": run_decision_loop,
                "Pyodide": lambda p: runner.call("bench.edge_inner:run", p),
            }
            rounds = alternate_in_process(
                {name: partial(json_call, run, payload) for name, run in runtimes.items()},
                plan.rounds,
                lambda result: Summary.from_dict(result["latency_us"]),
            )
    except PyodideError as exc:
        raise BenchSetupError(f"Pyodide under Node is not usable: {exc}") from exc
    cpython, pyodide = (_merge(name, rounds[name]) for name in runtimes)
    if cpython.html_sha256 != pyodide.html_sha256 or cpython.shown != pyodide.shown:
        raise BenchRunError(
            "CPython and Pyodide decided differently: "
            f"{cpython.shown} vs {pyodide.shown} cards, HTML {cpython.html_sha256[:12]} vs "
            f"{pyodide.html_sha256[:12]}"
        )
    return cpython, pyodide


def _merge(runtime: str, results: list[dict[str, Any]]) -> LoopResult:
    hashes = {r["html_sha256"] for r in results}
    if len(hashes) != 1:
        raise BenchRunError(f"{runtime}: the same request produced different HTML across rounds")
    first = results[0]
    return LoopResult(
        runtime=runtime,
        samples_us=tuple(x for r in results for x in r["samples_us"]),
        html_sha256=first["html_sha256"],
        shown=int(first["shown"]),
        candidates=int(first["candidates"]),
        html_bytes=int(first["html_bytes"]),
    )


def _http(plan: Plan) -> None:
    fixture = build_fixture(time.time(), SEGMENT_SECRET)
    with RedisServer() as redis:
        report = asyncio.run(seed_catalog(redis.url))
        say()
        say(seeded_line(report))
        with OriginServer(redis.url, probe_path="/healthz") as origin:
            edge = EdgeServer(origin.base_url, SEGMENT_SECRET, probe_path="/se/metrics")
            with edge:
                body_bytes = _warm(edge.port, fixture)
                with StaticBaseline(body_bytes) as baseline:
                    heading(
                        f"local edge over HTTP: cache hits, {plan.connections} keep-alive "
                        f"connections, {plan.http_rounds} rounds of {plan.round_s:g} s, "
                        "alternating"
                    )
                    before = _cache_counts(edge.port)
                    edge_load = _spec(edge.port, SLOT_PATH, fixture, plan)
                    static_load = _spec(baseline.port, "/static", fixture, plan)
                    a, b = alternate(
                        Contender("edge /se/slot (HIT)", edge_load),
                        Contender("baseline static", static_load),
                        plan.http_rounds,
                    )
                    after = _cache_counts(edge.port)
    served = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    total = sum(served.values())
    hit_share = served.get("HIT", 0.0) / total if total else 0.0
    say(a.line())
    say(b.line())
    say(round_ratios_line(a, b))
    say(f"edge cache statuses during the load: {_counts_text(served)} (HIT share {hit_share:.2%})")
    if hit_share < HIT_SHARE_FLOOR:
        raise BenchRunError(f"only {hit_share:.2%} of the edge load were cache hits")
    ratio_line(
        "edge/static req/s",
        ratio(a.requests_per_second, b.requests_per_second, "edge throughput"),
        a.label,
        b.label,
    )
    ratio_line(
        "edge/static p99",
        ratio(a.latency_ms.p99, b.latency_ms.p99, "edge latency"),
        a.label,
        b.label,
    )


def _warm(port: int, fixture: EdgeFixture) -> int:
    """Fill the edge cache (MISS), check the next answer is a HIT; return its body size."""
    first = http_get(port, SLOT_PATH, fixture.headers)
    second = http_get(port, SLOT_PATH, fixture.headers)
    status = second.headers.get("x-shelfedge-cache")
    if first.status != 200 or second.status != 200 or status != "HIT":
        raise BenchRunError(
            f"edge warm-up: answers {first.status}/{second.status}, second cache status {status}"
        )
    if second.body.count(b'data-se-pos="') == 0:
        raise BenchRunError("edge warm-up: the slot HTML shows no cards")
    return len(second.body)


def _cache_counts(port: int) -> dict[str, float]:
    fetched = http_get(port, "/se/metrics")
    if fetched.status != 200:
        raise BenchRunError(f"edge /se/metrics answered {fetched.status}")
    return {m[1]: float(m[2]) for m in _HIT_COUNTER.finditer(fetched.body.decode("utf-8"))}


def _counts_text(counts: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(counts.items())) or "none"


def _spec(port: int, path: str, fixture: EdgeFixture, plan: Plan) -> LoadSpec:
    """Both servers get the shopper's headers (the baseline ignores them, but parses them)."""
    return LoadSpec(
        port=port,
        path=path,
        headers=tuple(fixture.headers.items()),
        connections=plan.connections,
        duration_s=plan.round_s,
        warmup_s=plan.warmup_s,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        "bench.edge", "edge decision (CPython vs Pyodide) and local edge HTTP", measure, argv
    )


if __name__ == "__main__":
    sys.exit(main())
