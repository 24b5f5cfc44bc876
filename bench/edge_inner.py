"""The edge's per-request decision, timed where it runs: under CPython and inside Pyodide.

`run(payload) -> str` takes the JSON `EdgeLoopSpec` (a bundle in wire format, the request's
headers, the clock, the number of iterations), decodes the bundle once into an in-memory hot
cache (`edge.memory.MemoryTransport`), then times `edge.flow.handle_slot` driven by
`drive_sync` (context, route, cache decision, rerank of every candidate, assembly) over many
iterations with `time.perf_counter` around each one, and returns JSON with the samples and
percentiles in microseconds and a hash of the HTML.
The same function is called in-process by CPython and through `PyodideRunner` in Node, so both
time exactly the same code on the same input; equal `html_sha256` proves they decided alike.

Every request must be a cache HIT that shows cards: anything else (an origin fetch, a fallback)
means the fixture is wrong, and raises `BenchRunError` rather than timing the wrong path.
Standard library, `edge` and `fragments` only: it must import under Pyodide.
"""

from __future__ import annotations

import hashlib
import json
import time

from bench.errors import BenchRunError
from bench.stats import Summary
from edge.cache import CacheEntry
from edge.config import EdgeConfig
from edge.flow import SlotRequest, drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import decode_bundle

_CARD_MARKER = 'data-se-pos="'


def run(payload: str) -> str:
    """Time the decision `iterations` times after `warmup` untimed runs; return JSON results."""
    spec = json.loads(payload)
    bundle = decode_bundle(spec["bundle"])
    transport = MemoryTransport(_no_origin, record=False)
    transport.store.put(CacheEntry(bundle, float(spec["stored_at"])))
    config = EdgeConfig(
        fallbacks={bundle.key.slot: bundle.fallback_html},
        locales=tuple(spec["locales"]),
        segment_secret=str(spec["secret"]),
        default_segment=str(spec["default_segment"]),
        default_locale=str(spec["locales"][0]),
    )
    request = SlotRequest(
        slot=bundle.key.slot,
        headers={str(k): str(v) for k, v in spec["headers"].items()},
        query={str(k): str(v) for k, v in spec["query"].items()},
        now=float(spec["now"]),
        fresh_visitor_id="0" * 32,
    )

    html = ""
    for _ in range(int(spec["warmup"])):
        html = _decide(request, config, transport)
    samples: list[float] = []
    clock = time.perf_counter
    for _ in range(int(spec["iterations"])):
        started = clock()
        html = _decide(request, config, transport)
        samples.append(clock() - started)
    summary = Summary.of(samples).scaled(1e6)
    return json.dumps(
        {
            "latency_us": summary.to_dict(),
            "samples_us": [round(x * 1e6, 3) for x in samples],
            "candidates": len(bundle.candidates),
            "shown": html.count(_CARD_MARKER),
            "html_bytes": len(html.encode("utf-8")),
            "html_sha256": hashlib.sha256(html.encode("utf-8")).hexdigest(),
            "clock_resolution_us": time.get_clock_info("perf_counter").resolution * 1e6,
        }
    )


def _no_origin(fetch: OriginFetch) -> FetchResult:
    raise BenchRunError(f"unexpected origin fetch of {fetch.path}: the cache must hit")


def _decide(request: SlotRequest, config: EdgeConfig, transport: MemoryTransport) -> str:
    response, _core_seconds = drive_sync(handle_slot(request, config), transport)
    if response.status != 200 or response.cache_status != "HIT":
        raise BenchRunError(
            f"expected a 200 cache HIT, got {response.status} {response.cache_status}"
        )
    return response.body
