"""shelfedge benchmarks: origin, edge and invalidation, each against a baseline in the same run.

Every benchmark starts its own real services (Redis, the Tansu broker, uvicorn processes),
measures the product and a practical-limit baseline side by side (alternating rounds, because
the machine is small and shared), prints the ratio, and prints each target as PASS or MISS.

Run: ``python -m bench.origin``, ``python -m bench.edge``, ``python -m bench.invalidation``
(``--short`` or ``BENCH_SHORT=1`` for the CI mode, ``--strict`` to exit 1 on a missed target).

This package must never change product code or product state outside the services it started,
and never reach beyond loopback. `bench.edge_inner` and `bench.stats` also run inside Pyodide,
so this file and those modules import the standard library only.
"""
