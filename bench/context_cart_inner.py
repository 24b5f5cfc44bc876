"""The edge's cart decision (three anchors, all cached), timed where it runs: CPython or Pyodide.

`run(payload) -> str` takes JSON: the three anchors' bundles in wire format, the config the
edge needs for the ``cart-complete`` slot (safe default, anchors, locales, secret), the request's
headers (the ``se_cart`` cookie naming the anchors), the clock and the number of iterations. It
puts the bundles in an in-memory hot cache (`edge.memory.MemoryTransport`), then times
`edge.flow.handle_slot` + `drive_sync` (context, the three cache reads, the merge, the rerank,
the assembly) with `time.perf_counter` around each call, and returns the samples in
microseconds and a hash of the HTML, so CPython and Pyodide can be shown to decide alike.

Every request must be a cache HIT: anything else raises `BenchRunError`. Standard library,
`edge`, `fragments` and `bench.stats` only: it must import under Pyodide.
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


def run(payload: str) -> str:
    spec = json.loads(payload)
    transport = MemoryTransport(_no_origin, record=False)
    for wire in spec["bundles"]:
        transport.store.put(CacheEntry(decode_bundle(wire), float(spec["stored_at"])))
    config = EdgeConfig(
        fallbacks={str(k): str(v) for k, v in spec["fallbacks"].items()},
        locales=tuple(spec["locales"]),
        segment_secret=str(spec["secret"]),
        default_locale=str(spec["locales"][0]),
        anchors={str(k): str(v) for k, v in spec["anchors"].items()},
    )
    request = SlotRequest(
        str(spec["slot"]),
        {str(k): str(v) for k, v in spec["headers"].items()},
        {},
        float(spec["now"]),
        "0" * 32,
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
    return json.dumps(
        {
            "latency_us": Summary.of(samples).scaled(1e6).to_dict(),
            "samples_us": [round(x * 1e6, 3) for x in samples],
            "html_sha256": hashlib.sha256(html.encode("utf-8")).hexdigest(),
        }
    )


def _no_origin(fetch: OriginFetch) -> FetchResult:
    raise BenchRunError(f"unexpected origin fetch of {fetch.path}: the three anchors must hit")


def _decide(request: SlotRequest, config: EdgeConfig, transport: MemoryTransport) -> str:
    response, _ = drive_sync(handle_slot(request, config), transport)
    if response.status != 200 or response.cache_status != "HIT":
        raise BenchRunError(f"expected a 200 HIT, got {response.status} {response.cache_status}")
    return response.body
