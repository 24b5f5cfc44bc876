"""Behaviour to segment-change-visible latency on the local stack, one run.

    uv run python -m bench.context_latency [--visitors 60] [--poll-ms 25] [--refresh-after-s 60]

Starts its own Redis and Tansu broker, then the real origin (clickstream to the broker), the
context processor and the local edge (`tests.support.context_stack`: the demo catalog and one
rule, three ``electronics`` views in 30 minutes -> ``tech-enthusiasts``). Each visitor, one
after another: a first page (their cookie), two product views through ``/se/events``, then the
third view beacon; the clock starts when that beacon is sent. From then on two pollers run side
by side every ``--poll-ms``:

- **edge-visible** (the measurement): a page view through the edge, until the home hero is
  served from the visitor's new segment (the refreshed cookie deciding that page);
- **origin-decided** (the baseline): the origin's ``GET /v1/context/{visitor}/segment``, until
  it names the new segment (clickstream batch, broker, processor and Redis: the pipeline with
  no edge refresh in it).

It reports p50/p99 of both and their ratio (what the edge's background refresh adds to the
pipeline). The poll interval bounds the resolution: a figure is late by up to one interval.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from fragments.topics import ALL_TOPICS
from shelfedge.localstack import KafkaBroker, RedisServer, ensure_topics
from tests.support.context_stack import (
    CATEGORY,
    EDGE_TOKEN,
    SEGMENT,
    Shopper,
    context_stack,
    products_of,
    view_beacon,
    warm,
)

HERO = "home-hero"
TARGET_P99_S = 1.0
GIVE_UP_S = 10.0


@dataclass(frozen=True, slots=True)
class Latencies:
    """Seconds from the behaviour beacon to the new segment, per visitor."""

    edge_visible: list[float]
    origin_decided: list[float]

    def summary(self) -> dict[str, float]:
        edge, origin = sorted(self.edge_visible), sorted(self.origin_decided)
        return {
            "visitors": len(edge),
            "edge_visible_p50_ms": _quantile(edge, 0.5) * 1000,
            "edge_visible_p99_ms": _quantile(edge, 0.99) * 1000,
            "edge_visible_max_ms": edge[-1] * 1000,
            "origin_decided_p50_ms": _quantile(origin, 0.5) * 1000,
            "origin_decided_p99_ms": _quantile(origin, 0.99) * 1000,
            "ratio_p50": _quantile(edge, 0.5) / _quantile(origin, 0.5),
            "ratio_p99": _quantile(edge, 0.99) / _quantile(origin, 0.99),
            "target_p99_met": float(_quantile(edge, 0.99) <= TARGET_P99_S),
        }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def _until(
    what: str, check: Callable[[], Awaitable[bool]], started: float, poll_s: float
) -> float:
    """Seconds from `started` until `check` is true (polled every `poll_s`)."""
    while True:
        if await check():
            return time.perf_counter() - started
        if time.perf_counter() - started > GIVE_UP_S:
            raise TimeoutError(f"{what}: the segment did not change within {GIVE_UP_S} s")
        await asyncio.sleep(poll_s)


async def one_visitor(
    edge: httpx.AsyncClient, origin: httpx.AsyncClient, skus: Sequence[str], poll_s: float
) -> tuple[float, float]:
    """(edge-visible, origin-decided) seconds for one new visitor."""
    shopper = Shopper(edge)
    first = await shopper.page("/")
    assert first.slot_segments()[HERO] == "everyone", first.slot_segments()
    for sku in skus[:-1]:
        await shopper.view(sku)
    product = (await shopper.page(f"/products/{skus[-1]}")).product()
    assert product is not None
    beacon = [view_beacon(product)]
    started = time.perf_counter()
    await shopper.beacon(beacon)

    async def edge_shows() -> bool:
        return (await shopper.page("/")).slot_segments().get(HERO) == SEGMENT

    async def origin_says() -> bool:
        answer = await origin.get(f"/v1/context/{shopper.visitor}/segment")
        return bool(answer.status_code == 200 and answer.json()["segment"] == SEGMENT)

    edge_s, origin_s = await asyncio.gather(
        _until("edge", edge_shows, started, poll_s),
        _until("origin", origin_says, started, poll_s),
    )
    return edge_s, origin_s


async def measure(visitors: int, poll_s: float, refresh_after_s: float) -> Latencies:
    """Run the stack and measure `visitors` visitors, one after another."""
    with RedisServer() as redis, KafkaBroker() as broker:
        await ensure_topics(broker.bootstrap, ALL_TOPICS)
        async with context_stack(
            redis.url, broker.bootstrap, refresh_after_s=refresh_after_s
        ) as stack:
            headers = {"authorization": f"Bearer {EDGE_TOKEN}"}
            async with (
                httpx.AsyncClient(base_url=stack.edge.url, timeout=10) as edge,
                httpx.AsyncClient(base_url=stack.origin.url, timeout=10, headers=headers) as origin,
            ):
                await warm(edge)  # the hero's bundles cached: no cold fetch racing its budget
                skus = await products_of(edge, CATEGORY, 3)
                await one_visitor(edge, origin, skus, poll_s)  # warm-up, not counted
                edge_s: list[float] = []
                origin_s: list[float] = []
                for _ in range(visitors):
                    e, o = await one_visitor(edge, origin, skus, poll_s)
                    edge_s.append(e)
                    origin_s.append(o)
    return Latencies(edge_s, origin_s)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=60)
    parser.add_argument("--poll-ms", type=float, default=25.0)
    parser.add_argument("--refresh-after-s", type=float, default=60.0)
    args = parser.parse_args(argv)
    print(
        "behaviour -> segment visible (local stack):",
        report(args.visitors, args.poll_ms, args.refresh_after_s),
    )
    return 0


def report(
    visitors: int = 60, poll_ms: float = 25.0, refresh_after_s: float = 60.0
) -> dict[str, float]:
    """The figures of one run (what `bench.context` prints)."""
    latencies = asyncio.run(measure(visitors, poll_ms / 1000, refresh_after_s))
    return {**latencies.summary(), "poll_ms": poll_ms, "refresh_after_s": refresh_after_s}


if __name__ == "__main__":
    raise SystemExit(main())
