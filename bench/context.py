"""Anchored-slot figures, one run: the edge's shared-cache hit ratio for product cross-sell at
the demo's traffic (a simulation through the real edge flow), and the edge's cart decision
(three anchors, all cached) under CPython.

    uv run python -m bench.context [--requests 200000] [--rate 50]

The simulation drives `edge.flow.handle_slot` on an in-memory transport with a simulated clock:
product views follow a Zipf(s=1) law over `--skus` products, at `--rate` slot requests per
second, in `--locales` locales; the origin answers every fetch with a fresh bundle. It reports
the share of requests answered from the cache (HIT or STALE) and the distinct keys touched.
Behaviour-to-segment-visible latency on the local stack is `bench.context_latency`'s (run here
too). Not measured here (see docs/context.md): the context processor's throughput against raw
consumption, and the cart decision under Pyodide.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
from collections import Counter
from collections.abc import Sequence

from bench import context_latency
from edge.config import EdgeConfig
from edge.flow import SlotRequest, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import encode_bundle
from fragments.ids import FragmentKey
from fragments.slots import load_slots
from tests.edge.bundles import BUILT_AT, candidate, settings, small_bundle

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


def cart_decision(samples: int = 5000) -> dict[str, float]:
    """The edge decision for a cart of three anchors, all cached (CPython), in ms."""
    config = EdgeConfig.from_slots(load_slots(), SECRET)
    transport = _origin("cart-complete")
    cookie = "se_consent=1; se_cart=A|B|C; se_rv=c1~1000"
    request = SlotRequest("cart-complete", {"cookie": cookie}, {}, BUILT_AT, "f" * 32)
    drive_sync(handle_slot(request, config), transport)  # fill the three entries
    cores: list[float] = []
    for _ in range(samples):
        response, core = drive_sync(handle_slot(request, config), transport)
        cores.append(core * 1000)
        assert response.cache_status == "HIT", response.cache_status
    cores.sort()
    return {
        "p50_ms": statistics.median(cores),
        "p99_ms": cores[int(len(cores) * 0.99)],
        "samples": samples,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=50.0, help="slot requests per second")
    parser.add_argument("--skus", type=int, default=5000)
    args = parser.parse_args(argv)
    locales = load_slots().locales
    print("product cross-sell cache:", hit_ratio(args.requests, args.rate, args.skus, locales))
    print("cart decision, 3 anchors cached (CPython):", cart_decision())
    print("behaviour -> segment visible (local stack):", context_latency.report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
