"""OpenTelemetry spans of the invalidation pipeline (API only: without a configured tracer
provider every call here is a no-op, and the hot paths skip their tracing work entirely).

One trace follows an event: ``shelfedge.event.produce`` (the producer injects its W3C trace
context into the Kafka record headers, `record_headers`) -> ``shelfedge.event.consume`` (one per
sampled record, a child of the producer's span) -> ``shelfedge.window`` (the coalescing window,
a child of the window's first sampled record, linked to every other one) -> ``shelfedge.apply``
and ``shelfedge.propagate`` (recompute and purge enqueue) -> ``shelfedge.purge`` (the purge
request that carried the tags that propagation queued).

The purge queue lives in Redis and holds tags only, so the window's span context crosses it in
process memory (`PurgeTraces`, bounded): a purge span is a child of the propagation that queued
its first traced tag and links the others. A purge sent by another consumer instance (the lease
moved) starts its own trace. Sampling is the provider's business (``shelfedge.tracing``:
parent-based, so a sampled event keeps its whole trace and an unsampled one costs no span).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind

from invalidation.records import Record

tracer = trace.get_tracer("shelfedge.invalidation")

TRACEPARENT = "traceparent"
MAX_LINKS = 64
"""A window span links at most this many sampled records besides its parent."""
MAX_TRACED_TAGS = 10_000
"""`PurgeTraces` forgets the oldest tags beyond this many."""

Headers = Sequence[tuple[str, bytes]]


def tracing_on() -> bool:
    """Whether a tracer provider was configured (else every span would be a no-op)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def record_headers() -> list[tuple[str, bytes]]:
    """Kafka headers carrying the current trace context (W3C ``traceparent``/``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def sampled_context(headers: Headers) -> SpanContext | None:
    """The remote span context of a record's headers, if it is sampled (else None, cheaply:
    the sampled flag is read before anything is parsed)."""
    for name, value in headers:
        if name == TRACEPARENT:
            if not _sampled_flag(value):
                return None
            ctx = propagate.extract({TRACEPARENT: value.decode("ascii", "replace")})
            span_context = trace.get_current_span(ctx).get_span_context()
            return span_context if span_context.is_valid else None
    return None


def _sampled_flag(traceparent: bytes) -> bool:
    """The sampled bit of a ``traceparent``'s trace-flags (its last two hex digits)."""
    try:
        return bool(int(traceparent[-2:], 16) & 1)
    except ValueError:
        return False


def start_window_span(records: Sequence[Record]) -> Span:
    """Consume spans for the window's sampled records, then the window span (not current; the
    caller ends it). `trace.INVALID_SPAN` when tracing is off."""
    if not tracing_on():
        return trace.INVALID_SPAN
    consumed: list[SpanContext] = []
    for record in records:
        if not record.headers:
            continue
        remote = sampled_context(record.headers)
        if remote is None:
            continue
        span = tracer.start_span(
            "shelfedge.event.consume",
            context=trace.set_span_in_context(NonRecordingSpan(remote)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
            },
        )
        span.end()
        consumed.append(span.get_span_context())
    parent = trace.set_span_in_context(NonRecordingSpan(consumed[0])) if consumed else None
    return tracer.start_span(
        "shelfedge.window",
        context=parent,
        links=[Link(c) for c in consumed[1 : 1 + MAX_LINKS]],
        attributes={"shelfedge.records": len(records), "shelfedge.sampled": len(consumed)},
    )


def child_span(name: str) -> AbstractContextManager[object]:
    """A span under the current one (nothing at all when tracing is off)."""
    if not tracing_on():
        return nullcontext()
    return tracer.start_as_current_span(name)


class PurgeTraces:
    """Which window span queued each tag, until a purge worker sends it (bounded, in memory)."""

    def __init__(self, limit: int = MAX_TRACED_TAGS) -> None:
        self.limit = limit
        self._by_tag: OrderedDict[str, SpanContext] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_tag)

    def note(self, tags: Iterable[str]) -> bool:
        """Remember the current span (under a sampled window) for `tags`; False (nothing
        noted) when the current span is not sampled."""
        current = trace.get_current_span().get_span_context()
        if not current.is_valid or not current.trace_flags.sampled:
            return False
        for tag in tags:
            self._by_tag[tag] = current
            self._by_tag.move_to_end(tag)
        while len(self._by_tag) > self.limit:
            self._by_tag.popitem(last=False)
        return True

    def forget(self, tags: Iterable[str]) -> None:
        """Drop `tags` (noted, then not queued after all: their bundles did not change)."""
        for tag in tags:
            self._by_tag.pop(tag, None)

    def purge_span(self, purger: str, tags: Sequence[str]) -> AbstractContextManager[object]:
        """The span of one purge request: a child of the propagation that queued its first
        traced tag, linked to the others' (nothing when none of `tags` was traced). The tags
        are handed over once: a retried request after a failure starts no span of its own."""
        if not self._by_tag:
            return nullcontext()
        origins: list[SpanContext] = []
        for tag in tags:
            ctx = self._by_tag.pop(tag, None)
            if ctx is not None and ctx not in origins:
                origins.append(ctx)
        if not origins:
            return nullcontext()
        return tracer.start_as_current_span(
            "shelfedge.purge",
            context=trace.set_span_in_context(NonRecordingSpan(origins[0])),
            kind=SpanKind.CLIENT,
            links=[Link(c) for c in origins[1 : 1 + MAX_LINKS]],
            attributes={"shelfedge.purger": purger, "shelfedge.tags": len(tags)},
        )
