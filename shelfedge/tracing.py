"""Configure OpenTelemetry for one shelfedge process (called once by the CLI per sub-command).

Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set: spans go to that collector over OTLP/HTTP in batches. Otherwise no tracer provider is
installed and every instrumented path skips its tracing work (the code uses the API only).

Sampling: ``SHELFEDGE_TRACE_SAMPLE_RATIO`` (default 0.01, 1 %) of new traces, parent-based
(``ParentBased(TraceIdRatioBased(ratio))``): a span whose parent is sampled is sampled, so an
event sampled at its producer is followed through consume, apply, recompute and purge, and a
slot request sampled at the edge through the origin's answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from origin.core.env import env_positive_float
from origin.errors import SettingsError

DEFAULT_SAMPLE_RATIO = 0.01


def sampler_from_env(environ: Mapping[str, str]) -> Sampler:
    """``ParentBased(TraceIdRatioBased(SHELFEDGE_TRACE_SAMPLE_RATIO or 0.01))``."""
    ratio = env_positive_float(environ, "SHELFEDGE_TRACE_SAMPLE_RATIO")
    ratio = DEFAULT_SAMPLE_RATIO if ratio is None else ratio
    if ratio > 1.0:
        raise SettingsError("SHELFEDGE_TRACE_SAMPLE_RATIO", "a ratio in (0, 1]", str(ratio))
    return ParentBased(TraceIdRatioBased(ratio))


def tracer_provider(
    service: str, environ: Mapping[str, str], sampler: Sampler | None = None
) -> TracerProvider:
    """A provider for `service` with the configured sampler (no exporter attached)."""
    resource = Resource.create({"service.name": service, "service.namespace": "shelfedge"})
    return TracerProvider(resource=resource, sampler=sampler or sampler_from_env(environ))


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the OTLP exporting provider when an OTLP endpoint is configured; True if so."""
    e = os.environ if environ is None else environ
    if not (e.get("OTEL_EXPORTER_OTLP_ENDPOINT") or e.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return False
    # Imported only when configured: the exporter loads protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    provider = tracer_provider(service, e)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True
