"""The trace sources: Jaeger (`jaeger`), Tempo (`tempo`) and Zipkin (`zipkin`), each a
`TraceSource` that owns its HTTP client (`http`); what they share: their settings
(`config`), ids (`ids`), span parsing (`spans`, `otlp`), and how a query is matched and
listed (`query`). `trace_source` picks the one a configuration names."""

from __future__ import annotations

from meshtop.sources.protocols import TraceSource
from meshtop.sources.tracing.config import (
    DEFAULT_MAX_SPANS,
    KINDS,
    TracingConfig,
    parse_tracing,
)
from meshtop.sources.tracing.http import NotFound, TraceHTTP, error_reason, shape_error
from meshtop.sources.tracing.ids import hex_id, user_trace_id
from meshtop.sources.tracing.query import (
    backend_service,
    calls,
    canonical,
    failed_in,
    listed,
    matches,
    search_depth,
)
from meshtop.sources.tracing.spans import GARBLED, TooManySpans, check_spans, is_error

__all__ = [
    "DEFAULT_MAX_SPANS",
    "GARBLED",
    "KINDS",
    "NotFound",
    "TooManySpans",
    "TraceHTTP",
    "TracingConfig",
    "backend_service",
    "calls",
    "canonical",
    "check_spans",
    "error_reason",
    "failed_in",
    "hex_id",
    "is_error",
    "listed",
    "matches",
    "parse_tracing",
    "search_depth",
    "shape_error",
    "trace_source",
    "user_trace_id",
]


def trace_source(config: TracingConfig) -> TraceSource:
    """The `TraceSource` for the backend `config` names (imported only when asked for)."""
    if config.kind == "tempo":
        from meshtop.sources.tracing.tempo import TempoTraces

        return TempoTraces(config)
    if config.kind == "zipkin":
        from meshtop.sources.tracing.zipkin import ZipkinTraces

        return ZipkinTraces(config)
    from meshtop.sources.tracing.jaeger import JaegerTraces

    return JaegerTraces(config)
