"""Alternating A/B rounds (load against two servers, or in-process runtimes), and their figures.

The machine is small and shared, so throughput drifts with whatever else runs. Rounds alternate
in A B B A A B ... order (each pair swaps who goes first), which cancels a linear drift, and the
aggregate is taken over all rounds: requests over seconds, percentiles over every sample.
It must never drop a round: a failed round is a `BenchRunError` from the load generator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.loadgen import LoadResult, LoadSpec, run_load
from bench.report import say
from bench.stats import Summary


@dataclass(frozen=True, slots=True)
class Contender:
    """One side of the comparison: a label and the load to put on it."""

    label: str
    spec: LoadSpec


@dataclass(frozen=True, slots=True)
class Aggregate:
    """All rounds of one contender."""

    label: str
    results: tuple[LoadResult, ...]

    @property
    def requests_per_second(self) -> float:
        return sum(r.requests for r in self.results) / sum(r.seconds for r in self.results)

    @property
    def latency_ms(self) -> Summary:
        return Summary.of([x for r in self.results for x in r.samples_ms])

    @property
    def response_bytes(self) -> int:
        return self.results[-1].response_bytes

    def line(self) -> str:
        lat = self.latency_ms
        return (
            f"{self.label:<22} {self.requests_per_second:8.0f} req/s  p50 {lat.p50:7.2f} ms  "
            f"p99 {lat.p99:7.2f} ms  ({len(self.results)} rounds, {self.response_bytes} B/response)"
        )


def round_ratios_line(a: Aggregate, b: Aggregate) -> str:
    """Each round's a/b throughput ratio and their median: how much the noise moved it."""
    ratios = sorted(
        x.requests_per_second / y.requests_per_second
        for x, y in zip(a.results, b.results, strict=True)
    )
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    listed = " ".join(f"{r:.2f}" for r in ratios)
    return f"per-round {a.label} / {b.label} req/s: {listed} (median {median:.2f})"


def round_line(index: int, rounds: int, label: str, result: LoadResult) -> str:
    lat = result.latency_ms
    return (
        f"round {index}/{rounds}  {label:<22} {result.requests_per_second:8.0f} req/s  "
        f"p50 {lat.p50:7.2f} ms  p99 {lat.p99:7.2f} ms"
    )


def alternate(a: Contender, b: Contender, rounds: int) -> tuple[Aggregate, Aggregate]:
    """Run `rounds` rounds of each, alternating; return (a's aggregate, b's aggregate)."""
    results: dict[str, list[LoadResult]] = {a.label: [], b.label: []}
    for index in range(1, rounds + 1):
        order = (a, b) if index % 2 == 1 else (b, a)
        for contender in order:
            result = run_load(contender.spec)
            results[contender.label].append(result)
            say(round_line(index, rounds, contender.label, result))
    return (
        Aggregate(a.label, tuple(results[a.label])),
        Aggregate(b.label, tuple(results[b.label])),
    )


def alternate_in_process(
    runtimes: Mapping[str, Callable[[], dict[str, Any]]],
    rounds: int,
    latency: Callable[[dict[str, Any]], Summary],
) -> dict[str, list[dict[str, Any]]]:
    """Run each runtime once per round, reversing the order every other round (noise cancels
    out), print each round's p50/p99, and return every runtime's results in round order."""
    names = list(runtimes)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index in range(1, rounds + 1):
        order = names if index % 2 == 1 else names[::-1]
        for name in order:
            result = runtimes[name]()
            results[name].append(result)
            lat = latency(result)
            say(f"round {index}/{rounds}  {name:<8} p50 {lat.p50:8.1f} us  p99 {lat.p99:8.1f} us")
    return results


def json_call(run: Callable[[str], str], payload: str) -> dict[str, Any]:
    """Call a str -> JSON-str runtime entry and decode its answer."""
    result: dict[str, Any] = json.loads(run(payload))
    return result
