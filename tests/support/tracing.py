"""One OpenTelemetry tracer provider for the whole test session, exporting to memory.

OpenTelemetry lets a process set its global provider once, so the suite installs one on first
use whose sampler is switchable: it samples nothing (``ALWAYS_OFF``) except inside
`capturing_spans`, which switches to the sampler a test asks for and yields the in-memory
exporter, cleared first. Test support only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler, SamplingResult


class SwitchableSampler(Sampler):
    """Delegates to `inner`, which a test may swap."""

    def __init__(self) -> None:
        self.inner: Sampler = ALWAYS_OFF

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return self.inner.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return f"Switchable{{{self.inner.get_description()}}}"


_SAMPLER = SwitchableSampler()
_EXPORTER = InMemorySpanExporter()


def _install() -> None:
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        provider = TracerProvider(sampler=_SAMPLER)
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


@contextmanager
def capturing_spans(sampler: Sampler = ALWAYS_ON) -> Iterator[InMemorySpanExporter]:
    """Sample with `sampler` inside the block; the exporter holds the finished spans."""
    _install()
    _EXPORTER.clear()
    _SAMPLER.inner = sampler
    try:
        yield _EXPORTER
    finally:
        _SAMPLER.inner = ALWAYS_OFF


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    """The finished span that is `span`'s parent, or None."""
    if span.parent is None:
        return None
    for candidate in spans:
        ctx = candidate.get_span_context()
        if ctx is not None and ctx.span_id == span.parent.span_id:
            return candidate
    return None
