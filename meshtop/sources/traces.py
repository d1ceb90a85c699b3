"""The trace backend a configuration names (Jaeger, Tempo or Zipkin), and how the traces
a backend found become the list a user sees."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from meshtop.model import Trace, TraceQuery, TraceSummary
from meshtop.sources.protocols import TraceSource
from meshtop.sources.tracing import TracingConfig, canonical, matches

SEARCH_DEPTH = 5  # traces asked for per trace wanted when meshtop filters some out


def search_depth(q: TraceQuery, filtered_here: bool) -> int:
    """How many traces to ask a backend for: what the user wants when the backend does
    every filter; more when meshtop drops some (the edge's peer and version, which no
    backend's search can say; `filtered_here`: another filter the backend cannot do)."""
    if q.peer_service is None and not q.version and not filtered_here:
        return q.limit
    return max(q.limit * SEARCH_DEPTH, 20)


def trace_source(config: TracingConfig) -> TraceSource:
    if config.kind == "tempo":
        from meshtop.sources.tempo import TempoTraces

        return TempoTraces(config)
    if config.kind == "zipkin":
        from meshtop.sources.zipkin import ZipkinTraces

        return ZipkinTraces(config)
    from meshtop.sources.jaeger import JaegerTraces

    return JaegerTraces(config)


def listed(found: Iterable[Trace], q: TraceQuery) -> list[TraceSummary]:
    """The traces `q` asks for, slowest first, at most `q.limit`, each with its start and
    duration as its waterfall shows them: with the clock skew between services corrected.
    A service whose clock is behind makes a trace look longer than its root span (a real
    Jaeger or Zipkin sends the spans as recorded); the list, `--min-duration` and the
    order go by what the request took. "Errors only" keeps the traces where a span of
    the service itself failed: what Jaeger's and Zipkin's searches do where they can."""
    from meshtop.waterfall import Tree

    out = []
    for trace in found:
        if not matches(trace, q) or (q.errors_only and not failed_in(trace, q)):
            continue
        first, last = Tree(trace).bounds if trace.spans else (0, 0)
        summary = replace(TraceSummary.of(trace), start_us=first, duration_us=last - first)
        if q.min_duration_ms is None or summary.duration_us >= q.min_duration_ms * 1000:
            out.append(summary)
    out.sort(key=lambda t: -t.duration_us)
    return out[: q.limit]


def failed_in(trace: Trace, q: TraceQuery) -> bool:
    """Whether a span of `q.service` failed in the trace (not only a span somewhere else
    that the service may well have answered around)."""
    for s in trace.spans:
        if s.error:
            name, namespace = canonical(s)
            if q.service in (name, s.service) and (
                not q.namespace or not namespace or namespace == q.namespace
            ):
                return True
    return False
