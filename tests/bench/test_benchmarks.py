"""Each benchmark, run end to end in short mode as CI runs it: real services, real numbers.

A benchmark passes here when it completes (exit 0: nothing broken; a missed target is only a
MISS line) and prints its ratio lines, its target lines and its summary. The figures themselves
are not asserted: the machine is shared and noisy, and docs/performance.md records them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHORT_MODE_BUDGET_S = 150.0
"""Each script targets well under a minute in short mode; this leaves room for a busy machine."""
_RATIO = re.compile(r"^RATIO (?P<what>.+?) = (?P<value>[0-9]+\.[0-9]+)  \(.+ / .+\)$", re.M)
_TARGET = re.compile(r"^TARGET .+ measured \S+.* (?P<verdict>PASS|MISS)$", re.M)
_SUMMARY = re.compile(r"^SUMMARY (?P<met>\d+)/(?P<total>\d+) targets met \(short mode", re.M)

EXPECTED = {
    # module: (ratio lines it must print, target lines it must print)
    "bench.origin": (["origin/baseline req/s", "origin/baseline p99 at fixed rate"], 2),
    "bench.edge": (
        [
            "pyodide/cpython decision p50",
            "pyodide/cpython decision p99",
            "edge/static req/s",
            "edge/static p99",
        ],
        3,
    ),
    "bench.compose": (
        [
            "pyodide/cpython compose CPU p99",
            "composed/pass-through TTFB p50",
            "composed/pass-through complete p50",
            "composed/client-fetch page complete p50",
        ],
        2,
    ),
    "bench.invalidation": (
        [
            "pipeline/raw records/s",
            "event->purge p99 / window",
            "suppressed/unsuppressed purges",
            "traced/untraced records per CPU-second",
            "two processes / one",
        ],
        4,
    ),
    "bench.context": (
        [
            "processor/raw events/s",
            "pyodide/cpython cart decision p50",
            "pyodide/cpython cart decision p99",
            "edge-visible/origin-decided segment p99",
        ],
        4,
    ),
    "bench.ingest": (["import/raw-parse items/s", "1% re-import/full import seconds"], 4),
    "bench.wasm": (
        [
            "wasi/cpython decision p50",
            "wasi/cpython decision p99",
            "wasi/pyodide decision p50",
            "wasi/pyodide decision p99",
            "pyodide/cpython decision p50",
            "pyodide/cpython decision p99",
        ],
        2,
    ),
}


def _run_short(module: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["BENCH_SHORT"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SHORT_MODE_BUDGET_S,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(SHORT_MODE_BUDGET_S + 30)
@pytest.mark.parametrize("module", sorted(EXPECTED))
def test_benchmark_runs_in_short_mode_and_prints_its_ratios(module: str) -> None:
    completed = _run_short(module)
    output = completed.stdout
    assert completed.returncode == 0, (
        f"{module} exited {completed.returncode}\n--- stdout\n{output}\n--- stderr\n"
        f"{completed.stderr[-4000:]}"
    )
    ratios = {m["what"]: float(m["value"]) for m in _RATIO.finditer(output)}
    expected_ratios, expected_targets = EXPECTED[module]
    assert sorted(ratios) == sorted(expected_ratios), output
    assert all(value >= 0.0 for value in ratios.values()), output
    verdicts = [m["verdict"] for m in _TARGET.finditer(output)]
    assert len(verdicts) == expected_targets, output
    summary = _SUMMARY.search(output)
    assert summary is not None, output
    assert int(summary["total"]) == expected_targets
    assert int(summary["met"]) == verdicts.count("PASS")
