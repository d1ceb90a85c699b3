"""`TraceSource` for Jaeger: its v3 query API (`/api/v3/…`, OTLP JSON bodies) first, and
the older `/api/traces` JSON API of Jaeger up to 2.20 when there is no v3, found out on
the first call. Both formats of the older API are read: the UI's (hex ids, microseconds)
and api_v2's protobuf JSON (base64 ids, RFC 3339 times, `5000ns` durations)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from meshtop.errors import BackendError
from meshtop.model import Span, SpanEvent, Trace, TraceQuery, TraceSummary
from meshtop.sources.tracing import otlp
from meshtop.sources.tracing.config import TracingConfig
from meshtop.sources.tracing.http import NotFound, TraceHTTP, shape_error
from meshtop.sources.tracing.ids import hex_id
from meshtop.sources.tracing.query import backend_service, listed, search_depth
from meshtop.sources.tracing.spans import GARBLED, TooManySpans, check_spans, is_error


def _time_us(raw: object) -> int:
    """Microseconds since the epoch, from a number (µs) or an RFC 3339 string."""
    if isinstance(raw, int | float):
        return int(raw)
    text = str(raw)
    match = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        raise ValueError(text)
    base = datetime.fromisoformat(match[1] + match[3].replace("Z", "+00:00"))
    fraction = (match[2] or ".0")[1:7].ljust(6, "0")
    return int(base.timestamp()) * 1_000_000 + int(fraction)


_UNITS = {"ns": 0.001, "us": 1, "µs": 1, "ms": 1000, "s": 1_000_000}


def _duration_us(raw: object) -> int:
    if isinstance(raw, int | float):
        return int(raw)
    match = re.match(r"^([\d.]+)(ns|us|µs|ms|s)$", str(raw))
    if not match:
        raise ValueError(raw)
    return int(float(match[1]) * _UNITS[match[2]])


def _kv(items: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    """Jaeger's tags (`{key, type, value}`, or api_v2's `{key, vStr|vInt64|…}`)."""
    out = {}
    for t in items or ():
        v = t.get("value")
        if v is None:
            v = next(
                (t[k] for k in ("vStr", "vInt64", "vFloat64", "vBool", "vBinary") if k in t), ""
            )
        out[t["key"]] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def v1_trace(raw: Mapping[str, Any], max_spans: int | None = None) -> Trace:
    """A trace of the older JSON API (`{traceID, spans, processes}`, or api_v2's shape).
    More than `max_spans` spans raises `TooManySpans` (None: no cap)."""
    check_spans(len(raw.get("spans") or ()), max_spans)
    processes = raw.get("processes") or {}
    spans = []
    trace_id = hex_id(raw.get("traceID") or raw.get("traceId"))
    for s in raw.get("spans", []):
        process = s.get("process") or processes.get(s.get("processID"), {})
        tags = _kv(s.get("tags"))
        parent = next(
            (r for r in s.get("references") or () if r.get("refType", "CHILD_OF") == "CHILD_OF"),
            None,
        ) or next(iter(s.get("references") or ()), None)
        trace_id = trace_id or hex_id(s.get("traceID") or s.get("traceId"))
        spans.append(
            Span(
                span_id=hex_id(s.get("spanID") or s.get("spanId")),
                parent_id=hex_id(parent.get("spanID") or parent.get("spanId")) if parent else None,
                service=process.get("serviceName", "unknown"),
                operation=s.get("operationName", ""),
                start_us=_time_us(s.get("startTime", 0)),
                duration_us=_duration_us(s.get("duration", 0)),
                error=is_error(tags),
                tags=tags,
                kind=tags.get("span.kind", ""),
                events=tuple(
                    SpanEvent(
                        _time_us(log.get("timestamp", 0)),
                        _kv(log.get("fields")).get("event", ""),
                        _kv(log.get("fields")),
                    )
                    for log in s.get("logs") or ()
                ),
                process={
                    "service.name": process.get("serviceName", ""),
                    **_kv(process.get("tags")),
                },
            )
        )
    return Trace(trace_id, tuple(spans))


class JaegerTraces:
    def __init__(self, config: TracingConfig) -> None:
        self.http = TraceHTTP(config, "Jaeger")
        self.v3: bool | None = None  # None until the first call finds out

    @property
    def name(self) -> str:
        return self.http.name

    async def aclose(self) -> None:
        """Close this event loop's connections to the backend (see `TraceHTTP`)."""
        await self.http.aclose()

    async def _has_v3(self) -> bool:
        """Whether the v3 API answers. An older Jaeger answers an unknown path with 404,
        or, before that, with its UI's page (HTTP 200, HTML): both mean no v3."""
        if self.v3 is None:
            try:
                doc = await self.http.get("/api/v3/services")
                self.v3 = isinstance(doc, dict) and isinstance(doc.get("services"), list)
            except NotFound:
                self.v3 = False
            except BackendError as exc:
                if "not JSON" not in str(exc):
                    raise
                self.v3 = False
            if not self.v3:
                await self.http.get("/api/services")  # neither: this says the URL is wrong
        return self.v3

    async def services(self) -> list[str]:
        doc = await self.http.get("/api/v3/services" if await self._has_v3() else "/api/services")
        found = doc.get("services") if await self._has_v3() else doc.get("data")
        if not isinstance(found, list):
            raise shape_error("Jaeger", self.http.config.url, "no list of services")
        return [str(s) for s in found]

    async def find_traces(self, q: TraceQuery) -> Sequence[TraceSummary]:
        """Jaeger filters each span (a span of the service, of that operation, at least
        that long, and for the older API failed), and keeps the newest traces with such a
        span, as many as asked. What it cannot say (the edge, the version, failures in v3)
        meshtop keeps from more of them."""
        service = backend_service(q.service, q.namespace)
        now = time.time() if q.end_s is None else q.end_s
        since = max(0.0, now - q.lookback_s)  # a lookback of a million days: since 1970
        cap = self.http.config.max_spans
        try:
            if await self._has_v3():
                # v3's HTTP API takes no attributes (Jaeger 2.13): failures are found here
                depth = search_depth(q, q.errors_only)
                params: dict[str, Any] = {
                    "query.service_name": service,
                    "query.start_time_min": _rfc3339(since),
                    "query.start_time_max": _rfc3339(now),
                    "query.num_traces": depth,  # what the HTTP API reads (Jaeger 2.13)
                    "query.search_depth": depth,  # the field's name in api_v3's proto
                }
                if q.operation:
                    params["query.operation_name"] = q.operation
                if q.min_duration_ms:
                    params["query.duration_min"] = f"{int(q.min_duration_ms * 1000)}us"
                doc = await self.http.get("/api/v3/traces", params)
                found = otlp.traces(doc.get("result") or {}, cap) if isinstance(doc, dict) else None
            else:
                params = {
                    "service": service,
                    "limit": search_depth(q, False),
                    "start": int(since * 1e6),  # µs; this API has no lookback
                    "end": int(now * 1e6),
                }
                if q.operation:
                    params["operation"] = q.operation
                if q.min_duration_ms:
                    params["minDuration"] = f"{int(q.min_duration_ms * 1000)}us"
                if q.errors_only:
                    params["tags"] = '{"error":"true"}'
                doc = await self.http.get("/api/traces", params)
                data = doc.get("data") if isinstance(doc, dict) else None
                found = [v1_trace(t, cap) for t in data] if isinstance(data, list) else None
        except NotFound:
            return []  # v3 answers 404 when no trace matched
        except TooManySpans as exc:
            raise self.http.too_many(exc) from None
        except GARBLED as exc:
            raise self.http.garbled(exc) from None
        if found is None:
            raise shape_error("Jaeger", self.http.config.url, "no traces in the answer")
        return listed(found, q)

    async def get_trace(self, trace_id: str) -> Trace:
        trace_id = hex_id(trace_id)  # the backend's own form: lower-case hex
        missing = f"trace {trace_id} not found in Jaeger at {self.http.config.url}"
        cap = self.http.config.max_spans
        try:
            if await self._has_v3():
                doc = await self.http.get(f"/api/v3/traces/{trace_id}", missing=missing)
                found = otlp.traces(doc.get("result") or {}, cap)
            else:
                doc = await self.http.get(f"/api/traces/{trace_id}", missing=missing)
                found = [v1_trace(t, cap) for t in doc.get("data") or ()]
        except TooManySpans as exc:
            raise self.http.too_many(exc) from None
        except BackendError:
            raise
        except GARBLED as exc:
            raise self.http.garbled(exc) from None
        if not found or not found[0].spans:
            raise BackendError(missing)
        return found[0]


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")
