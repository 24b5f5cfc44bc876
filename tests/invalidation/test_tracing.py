"""Traces across the pipeline: an event produced with a sampled trace is followed through
consume, apply, recompute and purge, and a slot request through the edge's origin fetch into
the origin (real broker, consumer, Redis, origin and local edge; spans in memory)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind

from invalidation.canary import CanaryConfig, CanaryMetrics, FreshnessCanary
from invalidation.producer import EventProducer
from invalidation.records import Record
from invalidation.tracing import PurgeTraces, sampled_context
from origin.errors import SettingsError
from shelfedge.localstack import KafkaBroker
from shelfedge.tracing import sampler_from_env
from tests.support.live_stack import live_stack
from tests.support.tracing import capturing_spans, named, parent_of

Spans = Sequence[ReadableSpan]


def test_default_sampling_is_parent_based_one_percent() -> None:
    description = sampler_from_env({}).get_description()
    assert description.startswith("ParentBased{root:TraceIdRatioBased{0.01}")
    half = sampler_from_env({"SHELFEDGE_TRACE_SAMPLE_RATIO": "0.5"}).get_description()
    assert "TraceIdRatioBased{0.5}" in half
    with pytest.raises(SettingsError, match="SHELFEDGE_TRACE_SAMPLE_RATIO"):
        sampler_from_env({"SHELFEDGE_TRACE_SAMPLE_RATIO": "2"})


def test_only_sampled_trace_context_is_read_from_headers() -> None:
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    ctx = sampled_context([("traceparent", f"00-{trace_id}-{span_id}-01".encode())])
    assert ctx is not None
    assert format(ctx.trace_id, "032x") == trace_id
    assert sampled_context([("traceparent", f"00-{trace_id}-{span_id}-00".encode())]) is None
    assert sampled_context([("traceparent", f"00-{trace_id}-{span_id}-03".encode())]) is not None
    assert sampled_context([("traceparent", f"00-{trace_id}-{span_id}-02".encode())]) is None
    assert sampled_context([("traceparent", b"garbage-01")]) is None
    assert sampled_context([]) is None
    assert Record("t", 0, 0, None, None, 0).headers == ()


def test_purge_traces_are_bounded_and_handed_over_once() -> None:
    traces = PurgeTraces(limit=2)
    with capturing_spans(), trace.get_tracer("test").start_as_current_span("window"):
        traces.note(["a", "b", "c"])
    assert len(traces) == 2
    with capturing_spans() as exporter:
        with traces.purge_span("local-edge", ["b", "c", "x"]):
            pass
        with traces.purge_span("local-edge", ["b"]):
            pass
    assert [s.name for s in exporter.get_finished_spans()] == ["shelfedge.purge"]


async def _spans_when(
    exporter: InMemorySpanExporter, ready: Callable[[Spans], bool], within: float = 15.0
) -> Spans:
    deadline = time.monotonic() + within
    while True:
        spans = exporter.get_finished_spans()
        if ready(spans):
            return spans
        if time.monotonic() > deadline:
            raise AssertionError(f"spans never complete; have {sorted({s.name for s in spans})}")
        await asyncio.sleep(0.05)


def _chain(span: ReadableSpan, spans: Spans) -> list[str]:
    """Names from `span` up to its root."""
    out = [span.name]
    parent = parent_of(span, spans)
    while parent is not None:
        out.append(parent.name)
        parent = parent_of(parent, spans)
    return out


@pytest.mark.slow
async def test_one_trace_from_production_to_purge_and_from_slot_to_origin(
    redis_url: str, fresh_kafka_broker: KafkaBroker
) -> None:
    bootstrap = fresh_kafka_broker.bootstrap
    async with (
        live_stack(redis_url, bootstrap) as stack,
        EventProducer(bootstrap) as producer,
        httpx.AsyncClient(timeout=5) as http,
    ):
        canary = FreshnessCanary(
            CanaryConfig(stack.edge.url, stack.segment_secret, timeout_s=20.0),
            producer,
            http,
            CanaryMetrics.create(),
        )
        await canary.edge_price()  # the edge caches the canary bundle
        with capturing_spans(ALWAYS_ON) as exporter:
            result = await canary.round()
            assert result.outcome == "ok", result
            spans = await _spans_when(
                exporter,
                lambda s: (
                    bool(named(s, "shelfedge.purge"))
                    and bool(named(s, "GET /v1/bundles/home-hero"))
                ),
            )
        # An event whose trace is not sampled costs no span anywhere downstream.
        with capturing_spans(ParentBased(ALWAYS_OFF)) as unsampled:
            assert (await canary.round()).outcome == "ok"
            await asyncio.sleep(0.3)  # let the purge go out
            assert list(unsampled.get_finished_spans()) == []
    produce = named(spans, "shelfedge.event.produce")
    assert len(produce) == 1
    assert produce[0].attributes is not None
    assert produce[0].attributes["shelfedge.event_id"] == result.event_id
    trace_id = produce[0].context.trace_id if produce[0].context else None
    purge = [
        s
        for s in named(spans, "shelfedge.purge")
        if s.context is not None and s.context.trace_id == trace_id
    ]
    assert purge, "the purge of the canary's bundles continues the event's trace"
    assert _chain(purge[0], spans) == [
        "shelfedge.purge",
        "shelfedge.propagate",
        "shelfedge.window",
        "shelfedge.event.consume",
        "shelfedge.event.produce",
    ]
    propagate = parent_of(purge[0], spans)
    assert propagate is not None
    window = parent_of(propagate, spans)
    assert window is not None
    window_id = window.context.span_id if window.context else None
    children = sorted(s.name for s in spans if s.parent and s.parent.span_id == window_id)
    assert children == ["shelfedge.apply", "shelfedge.propagate"]
    assert purge[0].kind is SpanKind.CLIENT
    # A slot request through the edge into the origin: one trace, three spans deep.
    origin = named(spans, "GET /v1/bundles/home-hero")
    assert origin[-1].kind is SpanKind.SERVER
    assert _chain(origin[-1], spans) == [
        "GET /v1/bundles/home-hero",
        "shelfedge.edge.origin_fetch",
        "shelfedge.edge.slot",
    ]
