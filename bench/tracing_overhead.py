"""What tracing costs the invalidation pipeline: (e) of ``python -m bench.invalidation``.

The same backlog is consumed several times from the same freshly seeded state, each time in a
group of its own: with no tracer provider (the product's default: every tracing path is
skipped), and with the provider ``shelfedge.tracing`` builds
(``ParentBased(TraceIdRatioBased(0.01))``) and a batch span processor whose exporter drops what
it is given (the cost of making and queueing spans, not of a collector's network). Every
backlog record carries a W3C ``traceparent`` header, 1 % of them sampled, as a 1 %-sampled
producer would send them. Runs alternate, off and on, in pairs whose order flips
(`SwitchedTracing`), and the CPU of all the runs of each kind is summed: the drift between runs
of one backlog (warm-up, Redis, the shared machine) falls on both sides.

It must never use a broker or Redis it did not start.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.util._once import Once

from bench.event_source import StreamSpec, take
from invalidation.events import encode_event, topic_of
from shelfedge.tracing import DEFAULT_SAMPLE_RATIO, tracer_provider


class DroppingExporter(SpanExporter):
    """Accepts spans and keeps only their count."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class TracedBacklog:
    events: int
    sampled: int
    seconds: float


async def produce_traced_backlog(
    bootstrap: str, spec: StreamSpec, count: int, ratio: float = DEFAULT_SAMPLE_RATIO
) -> TracedBacklog:
    """`count` events of `spec`, each with a ``traceparent``; `ratio` of them sampled."""
    rng = random.Random(spec.seed)
    events = take(spec.stream(), count)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    sampled = 0
    started = time.perf_counter()
    await producer.start()
    try:
        for event in events:
            flag = "01" if rng.random() < ratio else "00"
            sampled += flag == "01"
            traceparent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-{flag}"
            await producer.send(
                topic_of(event),
                encode_event(event),
                key=event.sku.encode(),
                headers=[("traceparent", traceparent.encode())],
            )
        await producer.flush()
    finally:
        await producer.stop()
    return TracedBacklog(count, sampled, time.perf_counter() - started)


class SwitchedTracing:
    """The product's 1 % provider with a dropping exporter, put in place as the process's global
    tracer provider for a run and taken out again after it, so runs with tracing off and on
    alternate in one process (a single off-then-on pair mostly measures drift: this machine's
    runs of one backlog differ by more than the 5 % being measured).

    OpenTelemetry's API sets its global provider once per process; `off` resets the two module
    globals as opentelemetry's own test utilities (``reset_trace_globals``) do. A benchmark-only
    liberty: the product sets its provider once (``shelfedge.tracing``)."""

    def __init__(self) -> None:
        self.exporter = DroppingExporter()
        self.provider = tracer_provider("bench-invalidation", {})
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))

    def on(self) -> None:
        _reset_global_provider()
        trace.set_tracer_provider(self.provider)

    def off(self) -> None:
        self.provider.force_flush()
        _reset_global_provider()


def _reset_global_provider() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
