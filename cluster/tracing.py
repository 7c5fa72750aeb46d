"""OpenTelemetry traces: a span for each request, each job and each step, sent over OTLP/HTTP to a collector
when one is configured (SCOPIX_TRACING__ENDPOINT); without one, spans are the API's no-ops and cost nothing.

One trace follows a file: the upload request's context is stored with the jobs it queues (the W3C
`traceparent`, store/jobs.py), a job's span continues it, and the follow-ups the job queues continue the job's.
Ray carries no context, so a step's task is handed it explicitly (cluster/tasks.py), together with the export
settings: a Ray worker process sets up its own exporter on its first traced task.

The tracer provider is this module's, not OpenTelemetry's global one, which can be set only once per process:
here a process can stop exporting or switch collectors (`configure` again).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import propagate, trace
from opentelemetry.context import Context

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

TRACER_NAME = "scopix"


@dataclass(frozen=True)
class Export:
    """Where and how spans go: small and picklable, it travels with every traced Ray task."""

    endpoint: str  # the collector's OTLP/HTTP base URL, e.g. http://otel-collector:4318
    service: str = "scopix"
    delay_ms: int = 2000  # spans are sent in batches at most this long after they end


_provider: TracerProvider | None = None
_export: Export | None = None


def configure(export: Export | None) -> None:
    """Export this process's spans as `export` says (None: not at all). Calling it again with the same export does
    nothing; with another, the spans so far are flushed to the old collector first."""
    global _provider, _export
    if export == _export:
        return
    shutdown()
    if export is not None:
        _provider = _new_provider(export)
        _export = export


def _new_provider(export: Export) -> TracerProvider:
    # The SDK and the exporter (protobuf) are imported only when spans are exported.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": export.service, "process.pid": os.getpid()})
    provider = TracerProvider(resource=resource)
    exporter = OTLPSpanExporter(endpoint=f"{export.endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=export.delay_ms))
    return provider


def shutdown() -> None:
    """Send the spans still held and stop exporting (at the end of a process, or before a new export)."""
    global _provider, _export
    if _provider is not None:
        _provider.shutdown()
    _provider, _export = None, None


def current_export() -> Export | None:
    return _export


def provider() -> TracerProvider | None:
    """The provider spans go to, for instrumentation that takes one (the HTTP middleware); None when off."""
    return _provider


def tracer() -> trace.Tracer:
    return trace.NoOpTracer() if _provider is None else _provider.get_tracer(TRACER_NAME)


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), to hand across a process boundary; empty
    outside any span."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


def context_from(headers: Mapping[str, str]) -> Context:
    """The context `carrier()` wrote (a fresh root context for empty headers)."""
    return propagate.extract(headers)


@contextmanager
def span_in(
    headers: Mapping[str, str],
    name: str,
    attributes: Mapping[str, str | int] | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> Iterator[trace.Span]:
    """A span continuing the trace in `headers` (a new trace when they are empty), current while the block runs."""
    context = context_from(headers)
    with tracer().start_as_current_span(name, context=context, kind=kind, attributes=attributes) as span:
        yield span


def record_outcome(outcome: str, error: str | None = None) -> None:
    """Say on the current span how its work ended (`scopix.outcome`); an error marks the span failed."""
    span = trace.get_current_span()
    span.set_attribute("scopix.outcome", outcome)
    if error is not None:
        span.set_status(trace.Status(trace.StatusCode.ERROR, error))
