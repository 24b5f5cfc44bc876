"""Shopper-context figures, one run (the machine may be shared: every figure is a ratio against a
baseline measured side by side in the same run, or a simulation):

1. The context processor's events/s in one process against raw consumption of the same backlog
   (`bench.context_processor`: its own Tansu broker and redis-server; target ratio >= 0.5).
2. The edge's decision for a cart of three anchors, all cached, under Pyodide (in Node, through
   `tests.support.pyodide.PyodideRunner`) and CPython in alternating rounds on the same input
   (`bench.context_cart_inner`; both must produce the same HTML); target Pyodide p50 <= 1 ms,
   p99 <= 3 ms; prints the Pyodide/CPython ratio.
3. The edge's shared-cache hit ratio for product cross-sell at the demo's traffic (a simulation
   through the real edge flow).

    uv run python -m bench.context [--short] [--strict]

Full mode: 20,000 events over 2,000 visitors, 3 processor rounds, 4 x 2,000 cart decisions per
runtime, 200,000 simulated requests; short mode (CI): 4,000 / 400, 1, 2 x 500, 20,000.

The simulation drives `edge.flow.handle_slot` on an in-memory transport with a simulated clock:
product views follow a Zipf(s=1) law over 5,000 products, at 50 slot requests per second, 80 %
in the first locale and 20 % in the last; the origin answers every fetch with a fresh bundle. It
reports the share of requests answered from the cache (HIT or STALE) and the distinct keys
touched.
Behaviour-to-segment-visible latency on the local stack is `bench.context_latency`'s, run here
too (its edge-visible p99 against the 1 s target, and its ratio to the origin's own decision).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import statistics
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from bench import context_latency
from bench.ab import alternate_in_process, json_call
from bench.context_cart_inner import run as run_cart_loop
from bench.context_processor import measure as measure_processor
from bench.errors import BenchRunError, BenchSetupError
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
from bench.stats import Summary
from edge.config import EdgeConfig
from edge.flow import SlotRequest, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import encode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from tests.edge.bundles import BUILT_AT, candidate, settings, small_bundle
from tests.support.pyodide import PyodideError, PyodideRunner, prepare_pyodide_wheels

SECRET = "bench-context-secret-0123456789"


def _origin(policy_slot: str) -> MemoryTransport:
    slot = load_slots().slots[policy_slot]

    def answer(fetch: OriginFetch) -> FetchResult:
        key = fetch.key
        rows = [candidate(f"{key.anchor}-{i}", 1.0 - i / 50, f"c{i % 5}") for i in range(40)]
        bundle = small_bundle(rows, key=key, rerank=settings(6, 2), policy=slot.policy)
        return FetchResult(200, encode_bundle(bundle))

    return MemoryTransport(answer)


def hit_ratio(requests: int, rate: float, skus: int, locales: Sequence[str]) -> dict[str, float]:
    """Simulate product-page cross-sell traffic; the cache's answer shares."""
    config = EdgeConfig.from_slots(load_slots(), SECRET)
    transport = _origin("product-cross-sell")
    weights = [1.0 / (rank + 1) for rank in range(skus)]
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    rng = random.Random(15)
    statuses: Counter[str] = Counter()
    keys: set[str] = set()
    now = BUILT_AT
    for _ in range(requests):
        now += rng.expovariate(rate)
        sku = f"SKU-{bisect.bisect_left(cumulative, rng.random() * total):05d}"
        locale = locales[0] if rng.random() < 0.8 else locales[-1]
        request = SlotRequest(
            "product-cross-sell", {}, {"sku": sku, "locale": locale}, now, "f" * 32
        )
        response, _ = drive_sync(handle_slot(request, config), transport)
        statuses[response.cache_status] += 1
        keys.add(FragmentKey.anchored("product-cross-sell", sku, locale=locale).cache_key)
    cached = statuses["HIT"] + statuses["STALE"]
    return {
        "requests": requests,
        "simulated_seconds": now - BUILT_AT,
        "hit_ratio": cached / requests,
        "distinct_keys": len(keys),
        "origin_fetches": statuses["MISS"] + statuses["REVALIDATED"],
    }


CART_SLOT = "cart-complete"
CART_ANCHORS = ("A", "B", "C")
PYODIDE_PACKAGES = ("edge", "fragments", "bench")
P50_TARGET_US = 1000.0
P99_TARGET_US = 3000.0
PROCESSOR_RATIO_TARGET = 0.5


def cart_payload(iterations: int, warmup: int) -> str:
    """The cart decision's input: the three anchors' bundles as the origin answers them."""
    slots = load_slots()
    config = EdgeConfig.from_slots(slots, SECRET)
    transport = _origin(CART_SLOT)
    cookie = "se_consent=1; se_cart=" + "|".join(CART_ANCHORS) + "; se_rv=c1~1000"
    request = SlotRequest(CART_SLOT, {"cookie": cookie}, {}, BUILT_AT, "f" * 32)
    drive_sync(handle_slot(request, config), transport)  # the origin answers the three misses
    entries = [e for e in (transport.store.get(k) for k in _cart_keys()) if e is not None]
    if len(entries) != len(CART_ANCHORS):
        raise BenchRunError(f"expected {len(CART_ANCHORS)} cached anchors, got {len(entries)}")
    return json.dumps(
        {
            "bundles": [encode_bundle(e.bundle).decode() for e in entries],
            "stored_at": BUILT_AT,
            "now": BUILT_AT + 1,
            "slot": CART_SLOT,
            "fallbacks": {CART_SLOT: slots.slots[CART_SLOT].fallback_html},
            "anchors": dict(config.anchors),
            "locales": list(config.locales),
            "secret": SECRET,
            "headers": {"cookie": cookie},
            "iterations": iterations,
            "warmup": warmup,
        }
    )


def _cart_keys() -> list[str]:
    locale = load_slots().locales[0]
    return [FragmentKey.anchored(CART_SLOT, sku, locale=locale).cache_key for sku in CART_ANCHORS]


def cart_decision(rounds: int, iterations: int) -> dict[str, Summary]:
    """The cart decision under CPython and Pyodide, alternating rounds; p50/p99 in us."""
    payload = cart_payload(iterations, warmup=max(50, iterations // 10))
    heading(
        f"edge cart decision: 3 cached anchors merged and reranked, {rounds} rounds x "
        f"{iterations} per runtime, alternating"
    )
    try:
        prepare_pyodide_wheels()
        with PyodideRunner(packages=PYODIDE_PACKAGES, call_timeout=300.0) as runner:
            info = runner.info
            say(f"pyodide {info.pyodide_version} (Python {info.python_version}) under Node; "
                f"CPython {sys.version.split()[0]}")  # fmt: skip
            runtimes: dict[str, Callable[[str], str]] = {
                "CPython": run_cart_loop,
                "Pyodide": lambda p: runner.call("bench.context_cart_inner:run", p),
            }
            results = alternate_in_process(
                {name: partial(json_call, run, payload) for name, run in runtimes.items()},
                rounds,
                lambda result: Summary.from_dict(result["latency_us"]),
            )
    except PyodideError as exc:
        raise BenchSetupError(f"Pyodide under Node is not usable: {exc}") from exc
    hashes = {r["html_sha256"] for rs in results.values() for r in rs}
    if len(hashes) != 1:
        raise BenchRunError("CPython and Pyodide decided the cart differently")
    return {
        name: Summary.of([x for r in rs for x in r["samples_us"]]) for name, rs in results.items()
    }


def processor_throughput(events: int, visitors: int, rounds: int) -> dict[str, Any]:
    heading(
        f"context processor vs raw consumption: {events} click events over {visitors} "
        f"visitors, {rounds} alternating rounds, one process each"
    )
    raws, procs = asyncio.run(measure_processor(events, visitors, rounds))
    for raw, proc in zip(raws, procs, strict=True):
        say(f"raw {raw.rate:10.0f} events/s   processor {proc.rate:8.0f} events/s   "
            f"ratio {proc.rate / raw.rate:.3f}")  # fmt: skip
    raw_rate = statistics.median(r.rate for r in raws)
    proc_rate = statistics.median(r.rate for r in procs)
    return {"raw": raw_rate, "processor": proc_rate, "ratio": proc_rate / raw_rate}


def measure(options: BenchOptions) -> list[Target]:
    short = options.short
    events, visitors = (4_000, 400) if short else (20_000, 2_000)
    throughput = processor_throughput(events, visitors, 1 if short else 3)
    ratio_line("processor/raw events/s", throughput["ratio"], "processor", "raw consumption")
    cart = cart_decision(2 if short else 4, 500 if short else 2_000)
    cpy, pyo = cart["CPython"], cart["Pyodide"]
    say(f"cart decision, 3 anchors: CPython p50 {cpy.p50:.0f} us p99 {cpy.p99:.0f} us; "
        f"Pyodide p50 {pyo.p50:.0f} us p99 {pyo.p99:.0f} us")  # fmt: skip
    ratio_line("pyodide/cpython cart decision p50", ratio(pyo.p50, cpy.p50, "p50"),
               "Pyodide", "CPython")  # fmt: skip
    ratio_line("pyodide/cpython cart decision p99", ratio(pyo.p99, cpy.p99, "p99"),
               "Pyodide", "CPython")  # fmt: skip
    heading("product cross-sell cache (simulation)")
    say(str(hit_ratio(20_000 if short else 200_000, 50.0, 5000, load_slots().locales)))
    heading("behaviour -> segment visible (local stack)")
    latency = context_latency.report(10 if short else 100)
    say(str(latency))
    ratio_line("edge-visible/origin-decided segment p99", latency["ratio_p99"], "edge", "origin")
    return [
        at_most("behaviour -> segment visible p99", latency["edge_visible_p99_ms"],
                context_latency.TARGET_P99_S * 1000, "ms"),
        at_least("context processor / raw consumption events/s", throughput["ratio"],
                 PROCESSOR_RATIO_TARGET),
        at_most("Pyodide cart decision (3 anchors) p50", pyo.p50, P50_TARGET_US, "us"),
        at_most("Pyodide cart decision (3 anchors) p99", pyo.p99, P99_TARGET_US, "us"),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        "bench.context",
        "context processor vs raw consumption, the cart decision under Pyodide, cross-sell cache",
        measure,
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
