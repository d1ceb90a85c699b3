"""`TraceSource` for Zipkin's v2 API: `/api/v2/traces` to search, `/api/v2/trace/{id}`
for one. A span both sides recorded (`shared`: the client's and the server's halves under
one id) becomes two, the server's half under the client's, as Zipkin's own UI shows it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from meshtop.errors import BackendError
from meshtop.model import Span, SpanEvent, Trace, TraceQuery, TraceSummary
from meshtop.sources.tracing.config import TracingConfig
from meshtop.sources.tracing.http import TraceHTTP, shape_error
from meshtop.sources.tracing.ids import hex_id
from meshtop.sources.tracing.query import backend_service, listed, search_depth
from meshtop.sources.tracing.spans import GARBLED, TooManySpans, check_spans, is_error

SERVER_HALF = "~server"  # suffix of the id given to the server's half of a shared span


def zipkin_trace(raw: Sequence[Mapping[str, Any]], max_spans: int | None = None) -> Trace:
    """A trace from Zipkin's list of spans. More than `max_spans` of them raises
    `TooManySpans` (None: no cap)."""
    check_spans(len(raw), max_spans)
    clients = {s.get("id") for s in raw if s.get("kind") == "CLIENT"}
    shared = {
        hex_id(s["id"])
        for s in raw
        if s.get("shared") and s.get("kind") == "SERVER" and s["id"] in clients
    }
    server_service = {
        hex_id(s["id"]): (s.get("localEndpoint") or {}).get("serviceName", "")
        for s in raw
        if hex_id(s["id"]) in shared and s.get("kind") == "SERVER"
    }
    spans = []
    trace_id = ""
    for s in raw:
        trace_id = trace_id or hex_id(s.get("traceId"))
        span_id, parent = hex_id(s["id"]), hex_id(s.get("parentId")) or None
        service = (s.get("localEndpoint") or {}).get("serviceName") or "unknown"
        if span_id in shared and s.get("kind") == "SERVER":
            span_id, parent = span_id + SERVER_HALF, span_id
        elif parent in shared and server_service.get(parent) == service:
            parent = parent + SERVER_HALF  # recorded by the server: under its half
        tags = {str(k): str(v) for k, v in (s.get("tags") or {}).items()}
        remote = (s.get("remoteEndpoint") or {}).get("serviceName")
        if remote:
            tags.setdefault("peer.service", remote)
        spans.append(
            Span(
                span_id=span_id,
                parent_id=parent,
                service=service,
                operation=s.get("name", ""),
                start_us=int(s.get("timestamp") or 0),
                duration_us=int(s.get("duration") or 0),
                # Zipkin's convention: an `error` tag marks a failure, its value is the
                # message ("error": "timeout"), not "true"
                error="error" in tags or is_error(tags),
                tags=tags,
                kind=str(s.get("kind", "")).lower(),
                events=tuple(
                    SpanEvent(int(a.get("timestamp", 0)), str(a.get("value", "")))
                    for a in s.get("annotations") or ()
                ),
                process={
                    "service.name": service,
                    **{
                        k: str(v)
                        for k, v in (s.get("localEndpoint") or {}).items()
                        if k != "serviceName"
                    },
                },
            )
        )
    return Trace(trace_id, tuple(spans))


class ZipkinTraces:
    def __init__(self, config: TracingConfig) -> None:
        self.http = TraceHTTP(config, "Zipkin")

    @property
    def name(self) -> str:
        return self.http.name

    async def aclose(self) -> None:
        """Close this event loop's connections to the backend (see `TraceHTTP`)."""
        await self.http.aclose()

    async def find_traces(self, q: TraceQuery) -> Sequence[TraceSummary]:
        params: dict[str, Any] = {
            "serviceName": backend_service(q.service, q.namespace),
            "endTs": int((time.time() if q.end_s is None else q.end_s) * 1000),
            "lookback": int(q.lookback_s * 1000),
            "limit": search_depth(q, False),
        }
        if q.operation:
            params["spanName"] = q.operation
        if q.min_duration_ms:
            params["minDuration"] = int(q.min_duration_ms * 1000)
        if q.errors_only:
            params["annotationQuery"] = "error"
        doc = await self.http.get("/api/v2/traces", params)
        if not isinstance(doc, list):
            raise shape_error("Zipkin", self.http.config.url, "not a list of traces")
        try:
            found = [zipkin_trace(t, self.http.config.max_spans) for t in doc]
        except TooManySpans as exc:
            raise self.http.too_many(exc) from None
        except GARBLED as exc:
            raise self.http.garbled(exc) from None
        if q.operation:  # Zipkin keeps span names in lower case, and searches them so
            q = replace(q, operation=q.operation.lower())
        return listed(found, q)

    async def get_trace(self, trace_id: str) -> Trace:
        trace_id = hex_id(trace_id)  # the backend's own form: lower-case hex
        missing = f"trace {trace_id} not found in Zipkin at {self.http.config.url}"
        doc = await self.http.get(f"/api/v2/trace/{trace_id}", missing=missing)
        if not isinstance(doc, list):
            raise shape_error("Zipkin", self.http.config.url, "a trace is not a list of spans")
        try:
            trace = zipkin_trace(doc, self.http.config.max_spans)
        except TooManySpans as exc:
            raise self.http.too_many(exc) from None
        except GARBLED as exc:
            raise self.http.garbled(exc) from None
        if not trace.spans:
            raise BackendError(missing)
        return trace
