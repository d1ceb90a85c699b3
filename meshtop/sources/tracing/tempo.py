"""`TraceSource` for Grafana Tempo: `/api/search` with TraceQL, which can ask for an edge
exactly (`{service A} > {service B}`: B called by A), and `/api/v2/traces/{id}` (the
older `/api/traces/{id}` where there is no v2); a tenant header for multi-tenant setups."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from meshtop.errors import BackendError
from meshtop.model import Trace, TraceQuery, TraceSummary
from meshtop.sources.tracing import otlp
from meshtop.sources.tracing.config import TracingConfig
from meshtop.sources.tracing.http import NotFound, TraceHTTP
from meshtop.sources.tracing.ids import hex_id
from meshtop.sources.tracing.query import backend_service
from meshtop.sources.tracing.spans import GARBLED, TooManySpans


def traceql(q: TraceQuery) -> str:
    """The TraceQL for a trace list: the service, or the service calling its peer."""

    def spans_of(service: str, namespace: str, version: str) -> str:
        name = json.dumps(backend_service(service, namespace))
        revision = f" && span.istio.canonical_revision = {json.dumps(version)}" if version else ""
        return f"{{ resource.service.name = {name}{revision} }}"

    query = spans_of(q.service, q.namespace, q.version)
    if q.peer_service is not None:
        peer = spans_of(q.peer_service, q.peer_namespace, q.peer_version)
        # Istio: the callee's server span is a child of the caller's client span
        query = f"{query} > {peer}"
    extra = []
    if q.errors_only:
        extra.append("{ status = error }")
    if q.min_duration_ms:
        extra.append(f"{{ traceDuration >= {int(q.min_duration_ms * 1000)}us }}")
    if q.operation:
        extra.append(f"{{ name = {json.dumps(q.operation)} }}")
    return " && ".join([f"({query})" if extra else query, *extra])


def _summary(raw: Mapping[str, Any], errors_only: bool) -> TraceSummary:
    services = {str(raw.get("rootServiceName", ""))}
    # Tempo 2.x says, per service, how many spans and how many failed
    stats = raw.get("serviceStats") or {}
    services |= set(stats)
    spans = sum(int(s.get("spanCount") or 0) for s in stats.values()) or None
    failed = sum(int(s.get("errorCount") or 0) for s in stats.values())
    for spanset in raw.get("spanSets") or [raw.get("spanSet") or {}]:
        for span in spanset.get("spans", []):
            service = otlp.attributes(span.get("attributes")).get("service.name")
            if service:
                services.add(service)
    return TraceSummary(
        trace_id=hex_id(raw["traceID"]),
        start_us=int(raw.get("startTimeUnixNano") or 0) // 1000,
        duration_us=int(float(raw.get("durationMs") or 0) * 1000),
        root=f"{raw.get('rootServiceName', '')}: {raw.get('rootTraceName', '')}",
        services=tuple(sorted(services - {""})),
        span_count=spans,  # None where the search does not say
        error=True if errors_only or failed else (False if stats else None),
    )


class TempoTraces:
    def __init__(self, config: TracingConfig) -> None:
        self.http = TraceHTTP(config, "Tempo")

    @property
    def name(self) -> str:
        return self.http.name

    async def aclose(self) -> None:
        """Close this event loop's connections to the backend (see `TraceHTTP`)."""
        await self.http.aclose()

    async def find_traces(self, q: TraceQuery) -> Sequence[TraceSummary]:
        now = time.time() if q.end_s is None else q.end_s
        params = {"q": traceql(q), "limit": q.limit, "start": int(now - q.lookback_s),
                  "end": int(now) + 1}  # fmt: skip
        doc = await self.http.get("/api/search", params)
        try:
            found = [_summary(t, q.errors_only) for t in doc["traces"] or ()]
        except GARBLED as exc:
            raise self.http.garbled(exc) from None
        return sorted(found, key=lambda s: -s.duration_us)[: q.limit]

    async def get_trace(self, trace_id: str) -> Trace:
        trace_id = hex_id(trace_id)  # the backend's own form: lower-case hex
        missing = f"trace {trace_id} not found in Tempo at {self.http.config.url}"
        doc: Any
        try:
            doc = await self.http.get(f"/api/v2/traces/{trace_id}", missing=missing)
            doc = doc.get("trace", doc) if isinstance(doc, dict) else doc
        except NotFound:  # no v2 API (Tempo before 2.5), or no such trace: ask the older one
            doc = await self.http.get(f"/api/traces/{trace_id}", missing=missing)
        try:
            found = otlp.traces(doc, self.http.config.max_spans)
        except TooManySpans as exc:
            raise self.http.too_many(exc) from None
        except GARBLED as exc:
            raise self.http.garbled(exc) from None
        if not found or not found[0].spans:
            raise BackendError(missing)
        return found[0]
