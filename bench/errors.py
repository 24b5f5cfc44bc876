"""The benchmarks' exceptions: something is broken (as opposed to a target being missed).

    BenchError
    ├── BenchSetupError     a service, tool or input the benchmark needs is missing or wrong
    └── BenchRunError       a measurement went wrong (errors under load, wrong cache status,
                            a child process failed, a deadline passed)

A missed target is never an exception: it is a MISS line (and exit 1 only with --strict).
Standard library only: `bench.edge_inner` raises these inside Pyodide.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every benchmark failure that means "broken", not "slow"."""


class BenchSetupError(BenchError):
    """A prerequisite is missing or invalid; the message names it and how to provide it."""


class BenchRunError(BenchError):
    """A measurement could not be completed or produced invalid results."""
