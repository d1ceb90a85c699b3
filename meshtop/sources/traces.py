"""The trace backend a configuration names: Jaeger, Tempo or Zipkin."""

from __future__ import annotations

from meshtop.sources.protocols import TraceSource
from meshtop.sources.tracing import TracingConfig


def trace_source(config: TracingConfig) -> TraceSource:
    if config.kind == "tempo":
        from meshtop.sources.tempo import TempoTraces

        return TempoTraces(config)
    if config.kind == "zipkin":
        from meshtop.sources.zipkin import ZipkinTraces

        return ZipkinTraces(config)
    from meshtop.sources.jaeger import JaegerTraces

    return JaegerTraces(config)
