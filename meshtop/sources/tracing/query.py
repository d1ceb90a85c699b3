"""How a trace query is answered: a trace matched to a service or an edge of the mesh by
the tags Istio's proxies write (`istio.canonical_service`, `istio.namespace`,
`upstream_cluster`), how many traces to ask a backend for, and how the traces it found
become the list a user sees."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from meshtop.model import Span, Trace, TraceQuery, TraceSummary

SEARCH_DEPTH = 5  # traces asked for per trace wanted when meshtop filters some out


def canonical(span: Span) -> tuple[str, str]:
    """(service, namespace) of the workload that wrote the span: Istio's own tags first,
    else the service name, which Istio writes `app.namespace`."""
    name = span.tags.get("istio.canonical_service") or span.service
    namespace = span.tags.get("istio.namespace", "")
    if "." in name and not span.tags.get("istio.canonical_service"):
        name, _, rest = name.partition(".")
        namespace = namespace or rest.split(".")[0]
    return name, namespace


def _is(span: Span, service: str, namespace: str, version: str = "") -> bool:
    name, ns = canonical(span)
    if name != service and span.service != service:  # `my.service` may be a whole name
        return False
    if name == service and namespace and ns and ns != namespace:
        return False
    revision = span.tags.get("istio.canonical_revision", "")
    return not version or not revision or revision == version


def calls(trace: Trace, q: TraceQuery) -> bool:
    """Whether the trace shows `q.service` calling `q.peer_service`: a span of the peer
    whose parent is the service's, or a client span of the service whose upstream
    cluster is the peer's host (a call that never reached the peer, e.g. `UF`)."""
    assert q.peer_service is not None
    by_id = {s.span_id: s for s in trace.spans}
    for s in trace.spans:
        if _is(s, q.peer_service, q.peer_namespace, q.peer_version):
            parent = by_id.get(s.parent_id or "")
            if parent is not None and _is(parent, q.service, q.namespace, q.version):
                return True
        elif _is(s, q.service, q.namespace, q.version):
            # Istio's cluster name carries the subset: outbound|9080|v3|reviews.bookinfo…
            cluster = s.tags.get("upstream_cluster", "")
            host = f"|{q.peer_service}.{q.peer_namespace}." if q.peer_namespace else ""
            subset = f"|{q.peer_version}|" if q.peer_version else "|"
            if host and host in cluster and (subset == "|" or subset in cluster):
                return True
    return False


def matches(trace: Trace, q: TraceQuery) -> bool:
    """Whether a trace belongs in the list `q` asks for."""
    if not any(_is(s, q.service, q.namespace, q.version) for s in trace.spans):
        return False
    if q.peer_service is not None and not calls(trace, q):
        return False
    if q.errors_only and not trace.has_error:
        return False
    if q.operation and not any(s.operation == q.operation for s in trace.spans):
        return False
    return q.min_duration_ms is None or trace.duration_us >= q.min_duration_ms * 1000


def backend_service(service: str, namespace: str) -> str:
    """The service name a backend files Istio's spans under: `app.namespace`."""
    return f"{service}.{namespace}" if namespace else service


def search_depth(q: TraceQuery, filtered_here: bool) -> int:
    """How many traces to ask a backend for: what the user wants when the backend does
    every filter; more when meshtop drops some (the edge's peer and version, which no
    backend's search can say; `filtered_here`: another filter the backend cannot do)."""
    if q.peer_service is None and not q.version and not filtered_here:
        return q.limit
    return max(q.limit * SEARCH_DEPTH, 20)


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
        summary = replace(
            TraceSummary.of(trace),
            start_us=first,
            duration_us=last - first,
            failed_here=failed_in(trace, q),
        )
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
