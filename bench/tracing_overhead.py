"""What tracing costs the invalidation pipeline: (e) of ``python -m bench.invalidation``.

The same backlog is consumed twice from the same freshly seeded state, in two groups: first
with no tracer provider (the product's default: every tracing path is skipped), then with the
provider ``shelfedge.tracing`` builds (``ParentBased(TraceIdRatioBased(0.01))``) and a batch
span processor whose exporter drops what it is given (the cost of making and queueing spans,
not of a collector's network). Every backlog record carries a W3C ``traceparent`` header, 1 % of
them sampled, as a 1 %-sampled producer would send them. A process can install its global
tracer provider once, so "on" always runs second (after phases (a)-(d) warmed the process).

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


def install_sampled_provider() -> DroppingExporter:
    """Install the product's 1 % provider with a dropping exporter (once per process)."""
    exporter = DroppingExporter()
    provider = tracer_provider("bench-invalidation", {})
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter
