"""The Worker's own start-up cost, measured inside Pyodide once Pyodide has booted.

Cloudflare runs a Python Worker's top-level import at deploy time and snapshots it; a start-up
over 1 s of CPU is refused. `run(payload) -> str` takes JSON ``{"modules": [...]}`` (the
first-party modules the Worker ships, `tools.workerd.build_worker.worker_modules`, less the two
that import workerd's ``workers`` SDK) and, in a fresh Pyodide, imports them, reads the slot
config and builds the edge configuration from it (what the Worker's first request does), timing
it with wall time and Node's process CPU (the standard library they need first, then the
first-party modules, each share reported). It returns them in milliseconds, with the number of
modules this loaded (standard library ones included) and the five slowest imports (wall time,
each including what it imported first).

It must be the first thing a fresh interpreter runs: a module already imported costs nothing.
Standard library only at import (the measured imports happen inside `run`).
"""

from __future__ import annotations

import importlib
import json
import sys
import time

STDLIB = (
    "asyncio",
    "dataclasses",
    "enum",
    "fnmatch",
    "functools",
    "hashlib",
    "hmac",
    "html",
    "json",
    "re",
    "secrets",
    "tomllib",
    "typing",
    "urllib.parse",
)
"""The standard library the Worker's modules import, imported (and timed) first, so that the
first-party share is timed on its own."""


def _cpu_seconds() -> float:
    try:
        import js  # type: ignore[import-not-found]  # noqa: PLC0415 - only inside Pyodide

        used = js.process.cpuUsage()
        return float(used.user + used.system) / 1e6
    except (ImportError, AttributeError):
        return time.process_time()


def run(payload: str) -> str:
    """Import the Worker's modules and build its configuration; return the costs as JSON."""
    modules = list(json.loads(payload)["modules"])
    already = [name for name in modules if name in sys.modules]
    before = len(sys.modules)
    stdlib_wall, stdlib_cpu = time.perf_counter(), _cpu_seconds()
    for name in STDLIB:
        importlib.import_module(name)
    stdlib_cpu, stdlib_wall = _cpu_seconds() - stdlib_cpu, time.perf_counter() - stdlib_wall
    wall, cpu = time.perf_counter(), _cpu_seconds()
    steps: list[tuple[float, str]] = []
    for name in modules:
        step = time.perf_counter()
        importlib.import_module(name)
        steps.append((time.perf_counter() - step, name))
    config_module = importlib.import_module("edge.config")
    slots_module = importlib.import_module("fragments.slots")
    config = config_module.EdgeConfig.from_slots(slots_module.load_slots(), "x" * 32)
    cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
    return json.dumps(
        {
            "wall_ms": (stdlib_wall + wall) * 1000,
            "cpu_ms": (stdlib_cpu + cpu) * 1000,
            "stdlib_cpu_ms": stdlib_cpu * 1000,
            "own_cpu_ms": cpu * 1000,
            "modules_loaded": len(sys.modules) - before,
            "already_loaded": already,
            "slots": len(config.fallbacks),
            "slowest": [f"{name} {seconds * 1000:.1f} ms" for seconds, name in sorted(steps)[-5:]],
        }
    )
