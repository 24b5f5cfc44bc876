"""Demo inventory/price events for the invalidation benchmark: a backlog, or a paced stream.

`produce_backlog` writes N events as fast as the producer goes (to measure consumption).
``python -m bench.event_source`` (run by `run_paced_source`) produces at a fixed rate for a
fixed time in its own process, the way real upstream systems produce (never on the consumer's
event loop), and prints a JSON `SourceReport`. Events come from `DemoEventStream` over the demo
catalog (the same seed the Redis was seeded with), so every SKU exists. Each stream gets its own
version base and event-id prefix, so no stream looks stale or duplicate against another.

It must never produce to anything but the loopback broker the benchmark started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.errors import BenchRunError
from bench.processes import run_python_module
from bench.seeding import CATALOG_SEED, CATALOG_SKUS
from invalidation.demo_events import STOCK_NOISE_ONLY, DemoEventStream, EventMix
from invalidation.events import Event
from invalidation.producer import EventProducer
from origin.core.demo_catalog import generate_catalog

MIXES: dict[str, EventMix] = {"default": EventMix(), "stock-noise": STOCK_NOISE_ONLY}
TICK_S = 0.005
"""The paced source sends whatever is due every tick (5 ms)."""


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """Which events: the mix, a seed, and what keeps them apart from other streams."""

    mix: str
    seed: int
    version_base: int
    id_prefix: str

    def stream(self) -> DemoEventStream:
        if self.mix not in MIXES:
            raise BenchRunError(f"unknown event mix {self.mix!r}; known: {sorted(MIXES)}")
        products = generate_catalog(CATALOG_SEED, CATALOG_SKUS).products
        return DemoEventStream(
            products,
            seed=self.seed,
            version_base=self.version_base,
            mix=MIXES[self.mix],
            id_prefix=self.id_prefix,
        )


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What a paced source produced."""

    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def take(stream: DemoEventStream, count: int) -> list[Event]:
    """Exactly `count` events (a multi-event change may be cut at the end)."""
    events: list[Event] = []
    while len(events) < count:
        events.extend(stream.next_change())
    return events[:count]


async def produce_backlog(bootstrap: str, spec: StreamSpec, count: int) -> float:
    """Produce `count` events of `spec` and wait until all are acknowledged; return seconds."""
    events = take(spec.stream(), count)
    started = time.perf_counter()
    async with EventProducer(bootstrap, client_id=f"bench-{spec.id_prefix}") as producer:
        await producer.send_all(events)
    return time.perf_counter() - started


async def produce_paced(
    bootstrap: str, spec: StreamSpec, rate: float, seconds: float
) -> SourceReport:
    """Produce at `rate` events/s for `seconds` (sending what is due every tick)."""
    stream = spec.stream()
    pending: list[Event] = []
    sent = 0
    async with EventProducer(bootstrap, client_id=f"bench-{spec.id_prefix}") as producer:
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(rate * elapsed) - sent
            while len(pending) < due:
                pending.extend(stream.next_change())
            for event in pending[:due]:
                await producer.send(event)
            del pending[:due]
            sent += max(due, 0)
            await asyncio.sleep(TICK_S)
        await producer.flush()
        return SourceReport(sent, time.perf_counter() - started)


def run_paced_source(bootstrap: str, spec: StreamSpec, rate: float, seconds: float) -> SourceReport:
    """Run the paced source in a child process (blocking); return its report."""
    args = [
        "--bootstrap", bootstrap, "--rate", str(rate), "--seconds", str(seconds),
        "--mix", spec.mix, "--seed", str(spec.seed), "--version-base", str(spec.version_base),
        "--id-prefix", spec.id_prefix,
    ]  # fmt: skip
    out = run_python_module("bench.event_source", args, timeout=seconds + 60.0)
    doc = json.loads(out)
    return SourceReport(int(doc["events"]), float(doc["seconds"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.event_source")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--mix", choices=sorted(MIXES), default="default")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--version-base", type=int, required=True)
    parser.add_argument("--id-prefix", required=True)
    args = parser.parse_args(argv)
    if not args.bootstrap.startswith(("127.0.0.1:", "localhost:")):
        parser.error(f"--bootstrap {args.bootstrap!r} is not a loopback broker")
    spec = StreamSpec(args.mix, args.seed, args.version_base, args.id_prefix)
    report = asyncio.run(produce_paced(args.bootstrap, spec, args.rate, args.seconds))
    print(json.dumps({"events": report.events, "seconds": report.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
