"""Page composition's CPU cost, timed where it runs: under CPython and inside Pyodide.

`run(payload) -> str` takes JSON (a bundle in wire format, the shopper's headers, the clock, the
number of iterations, each slot's candidate count), stores the bundle in a hot in-memory cache
under three slots (home-hero, pdp-cross-sell, cart-upsell; each keeps its first ``candidates``
candidates, as slots.toml sizes them), builds a `PAGE_BYTES` page with one placeholder of
each, and then, per iteration, composes the page fed in `CHUNK_BYTES` chunks (the shopper
read once from the headers, `edge.composer.page_request`; the rewriter; three `handle_slot`
decisions on the hot cache; their markup; the timing comment: the CPU work an adapter and
`edge.composer.StreamComposer` do per page, without the event loop) and passes the same chunks
through (joining them), each timed with a CPU clock (`_cpu_clock`: the thread's under CPython,
Node's process CPU under Pyodide). A sample is the composition's time less the pass-through's,
in microseconds; the rewriter alone is timed too. It returns the samples, their percentiles
and a hash of the composed page without its timing comment (equal hashes: both runtimes
composed alike).

Every slot must be a cache HIT: anything else raises `BenchRunError`.
Standard library, `edge` and `fragments` only: it must import under Pyodide.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import replace

from bench.errors import BenchRunError
from bench.stats import Summary
from edge.cache import CacheEntry
from edge.compose import PageRewriter
from edge.composer import (
    PageRequest,
    SlotFill,
    decided_fill,
    page_request,
    slot_request,
    timing_comment,
)
from edge.config import EdgeConfig
from edge.flow import drive_sync, handle_slot
from edge.memory import MemoryTransport
from edge.transport import FetchResult, OriginFetch
from fragments.bundle import decode_bundle

SLOTS = ("home-hero", "pdp-cross-sell", "cart-upsell")
PAGE_BYTES = 60_000
CHUNK_BYTES = 16_384
_COMMENT = b"\n<!-- shelfedge composed\n"


def page(target: int = PAGE_BYTES) -> bytes:
    """A ``target``-byte product-listing page with one placeholder per slot of `SLOTS`."""
    head = b"<!doctype html><html><head><title>bench</title></head><body>\n"
    row = b'<li class="row"><a href="/products/SKU-%05d">Product %05d</a> <span>12.99</span></li>\n'
    slots = [b'<se-slot name="%s"><p>fallback</p></se-slot>\n' % s.encode() for s in SLOTS]
    tail = b"</body></html>\n"
    room = target - len(head) - len(tail) - sum(map(len, slots))
    rows = b"".join(row % (i, i) for i in range(max(room // len(row % (0, 0)), 3)))
    third = len(rows) // 3
    parts = [head, rows[:third], slots[0], rows[third : 2 * third], slots[1], rows[2 * third :]]
    return b"".join([*parts, slots[2], tail])


def run(payload: str) -> str:
    """Time composition against pass-through `iterations` times; return JSON results."""
    spec = json.loads(payload)
    bundle = decode_bundle(spec["bundle"])
    transport = MemoryTransport(_no_origin, record=False)
    now = float(spec["now"])
    for slot, candidates in zip(SLOTS, spec["candidates"], strict=True):
        slot_bundle = replace(
            bundle, key=replace(bundle.key, slot=slot), candidates=bundle.candidates[:candidates]
        )
        transport.store.put(CacheEntry(slot_bundle, now))
    config = EdgeConfig(
        fallbacks=dict.fromkeys(SLOTS, bundle.fallback_html),
        locales=tuple(spec["locales"]),
        segment_secret=str(spec["secret"]),
        default_segment=str(spec["default_segment"]),
        default_locale=str(spec["locales"][0]),
    )
    headers = {str(k): str(v) for k, v in spec["headers"].items()}
    shell = PageRequest(headers=headers, path="/bench", query={}, now=now, visitor_id="0" * 32)
    body = page()
    chunks = [body[i : i + CHUNK_BYTES] for i in range(0, len(body), CHUNK_BYTES)]
    composed = b""
    for _ in range(int(spec["warmup"])):
        composed = _compose(chunks, shell, config, transport)
        _pass_through(chunks)
    added: list[float] = []
    rewrite: list[float] = []
    clock, clock_name = _cpu_clock()
    for _ in range(int(spec["iterations"])):
        started = clock()
        composed = _compose(chunks, shell, config, transport)
        middle = clock()
        _pass_through(chunks)
        added.append((middle - started) - (clock() - middle))
        started = clock()
        _rewrite_only(chunks)
        rewrite.append(clock() - started)
    shown = composed.split(_COMMENT)[0]
    return json.dumps(
        {
            "latency_us": Summary.of(added).scaled(1e6).to_dict(),
            "samples_us": [round(x * 1e6, 3) for x in added],
            "page_bytes": len(body),
            "composed_bytes": len(composed),
            "html_sha256": hashlib.sha256(shown).hexdigest(),
            "clock": clock_name,
            "rewrite_only_us": Summary.of(rewrite).scaled(1e6).to_dict(),
        }
    )


def _compose(
    chunks: list[bytes], shell: PageRequest, config: EdgeConfig, transport: MemoryTransport
) -> bytes:
    # What the adapter does per page: the shopper read once, for every slot.
    request, _ = page_request(
        shell.headers, shell.path, shell.query, shell.now, config, shell.visitor_id
    )
    rewriter = PageRewriter()
    out: list[bytes] = []
    fills: list[SlotFill] = []
    for chunk in [*chunks, b""]:
        for piece in rewriter.feed(chunk) if chunk else rewriter.close():
            if isinstance(piece, bytes):
                out.append(piece)
                continue
            response, core = drive_sync(
                handle_slot(slot_request(request, piece), config), transport
            )
            if response.cache_status != "HIT":
                raise BenchRunError(f"slot {piece.slot}: {response.cache_status}, not a HIT")
            fill = decided_fill(piece, response, core, 0.0)
            fills.append(fill)
            out.append(fill.markup)
    if len(fills) != len(SLOTS):
        raise BenchRunError(f"composed {len(fills)} slots, expected {len(SLOTS)}")
    out.append(timing_comment(fills))
    return b"".join(out)


def _cpu_clock() -> tuple[Callable[[], float], str]:
    """A CPU clock, so that a busy machine's preemption does not count: this thread's CPU time
    under CPython, Node's ``process.cpuUsage()`` (user + system microseconds of the process)
    under Pyodide (which has no ``time.thread_time``), else wall time."""
    try:
        time.thread_time()
        if time.get_clock_info("thread_time").resolution <= 1e-6:
            return time.thread_time, "thread_time"
    except (AttributeError, OSError, ValueError):
        pass
    try:
        import js  # type: ignore[import-not-found]  # noqa: PLC0415 - only inside Pyodide

        usage = js.process.cpuUsage

        def node_cpu() -> float:
            used = usage()
            return float(used.user + used.system) / 1e6

        node_cpu()
        return node_cpu, "node process.cpuUsage"
    except (ImportError, AttributeError):
        return time.perf_counter, "perf_counter"


def _rewrite_only(chunks: list[bytes]) -> int:
    """The rewriter alone over the page (no decisions): its share of the composition."""
    rewriter = PageRewriter()
    pieces = [piece for chunk in chunks for piece in rewriter.feed(chunk)]
    return len(pieces) + len(rewriter.close())


def _pass_through(chunks: list[bytes]) -> bytes:
    return b"".join(list(chunks))


def _no_origin(fetch: OriginFetch) -> FetchResult:
    raise BenchRunError(f"unexpected origin fetch of {fetch.path}: the cache must hit")
