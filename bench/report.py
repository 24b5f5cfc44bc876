"""Command-line options, target checks and the printed report shared by the benchmarks.

Each benchmark prints plain lines a person reads and CI greps:

    RATIO <what> = <value>  (<numerator> / <denominator>)
    TARGET <name> <op> <limit> <unit>  measured <value> <unit>  PASS|MISS
    SUMMARY <met>/<total> targets met (<mode> mode, <seconds> s)

A missed target is reported, never raised: the exit code is 0 unless something is broken
(exit 2 for a `BenchError`, a traceback and 1 for anything unexpected) or `--strict` is given
and a target was missed (exit 1). This module must never hide a failure behind a PASS.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.errors import BenchError

SHORT_ENV = "BENCH_SHORT"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """How a benchmark runs."""

    short: bool
    """CI mode: fewer and shorter rounds (the whole script in well under a minute)."""
    strict: bool
    """Exit 1 when a target is missed."""

    @property
    def mode(self) -> str:
        return "short" if self.short else "full"


def parse_options(prog: str, description: str, argv: Sequence[str] | None = None) -> BenchOptions:
    """`--short` / `BENCH_SHORT=1` and `--strict`; a bad BENCH_SHORT value is an error."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--short", action="store_true", help=f"CI mode (or {SHORT_ENV}=1)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    raw = os.environ.get(SHORT_ENV, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        parser.error(f"{SHORT_ENV}={raw!r}: expected one of 1/true/yes/on or 0/false/no/off")
    return BenchOptions(short=bool(args.short) or raw in _TRUE, strict=bool(args.strict))


@dataclass(frozen=True, slots=True)
class Target:
    """A performance target and the value measured against it."""

    name: str
    measured: float
    limit: float
    unit: str
    at_most: bool
    """True: the measured value must be <= limit; False: >= limit."""

    @property
    def met(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    def line(self) -> str:
        op = "<=" if self.at_most else ">="
        unit = f" {self.unit}" if self.unit else ""
        verdict = "PASS" if self.met else "MISS"
        return (
            f"TARGET {self.name:<50} {op} {_number(self.limit)}{unit:<4}  "
            f"measured {_number(self.measured)}{unit}  {verdict}"
        )


def _number(value: float) -> str:
    """Three significant digits, without exponents for the magnitudes benchmarks produce."""
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def at_most(name: str, measured: float, limit: float, unit: str = "") -> Target:
    return Target(name, measured, limit, unit, at_most=True)


def at_least(name: str, measured: float, limit: float, unit: str = "") -> Target:
    return Target(name, measured, limit, unit, at_most=False)


def ratio(numerator: float, denominator: float, what: str) -> float:
    """numerator / denominator; a zero denominator means the baseline measured nothing."""
    if denominator <= 0:
        raise BenchError(f"{what}: the baseline measured {denominator!r}, cannot form a ratio")
    return numerator / denominator


def say(line: str = "") -> None:
    """Print one report line now (benchmarks run for a while; show progress as it comes)."""
    print(line, flush=True)


def heading(title: str) -> None:
    say()
    say(f"== {title} ==")


def ratio_line(what: str, value: float, numerator: str, denominator: str) -> None:
    say(f"RATIO {what} = {value:.3f}  ({numerator} / {denominator})")


def run_benchmark(
    prog: str,
    description: str,
    body: Callable[[BenchOptions], list[Target]],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse options, run `body`, print its targets and the summary; return the exit code."""
    options = parse_options(prog, description, argv)
    started = time.perf_counter()
    say(f"{prog}: {description} ({options.mode} mode)")
    try:
        targets = body(options)
    except BenchError as exc:
        print(f"{prog}: broken: {exc}", file=sys.stderr, flush=True)
        return 2
    heading("targets")
    for target in targets:
        say(target.line())
    met = sum(target.met for target in targets)
    elapsed = time.perf_counter() - started
    say(f"SUMMARY {met}/{len(targets)} targets met ({options.mode} mode, {elapsed:.1f} s)")
    if options.strict and met < len(targets):
        return 1
    return 0
