"""OTLP/JSON traces (`resourceSpans`, or Tempo's older `batches`), as Jaeger's v3 API and
Tempo answer them, turned into meshtop's spans: service from the resource, ids in hex,
times in microseconds, status ERROR and Istio's tags read as an error."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from meshtop.model import Span, SpanEvent, Trace
from meshtop.sources.tracing.ids import hex_id
from meshtop.sources.tracing.spans import check_spans, is_error

KINDS = {0: "", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def value(v: Mapping[str, Any]) -> str:
    """An OTLP AnyValue as text."""
    for key in ("stringValue", "intValue", "doubleValue", "bytesValue"):
        if key in v:
            return str(v[key])
    if "boolValue" in v:
        return "true" if v["boolValue"] else "false"
    if "arrayValue" in v:
        return "[" + ", ".join(value(x) for x in v["arrayValue"].get("values", [])) + "]"
    if "kvlistValue" in v:
        return (
            "{"
            + ", ".join(
                f"{k}={x}" for k, x in attributes(v["kvlistValue"].get("values", [])).items()
            )
            + "}"
        )
    return ""


def attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {a["key"]: value(a.get("value") or {}) for a in items or ()}


def _kind(raw: object) -> str:
    if isinstance(raw, int):
        return KINDS.get(raw, "")
    text = str(raw or "").lower().removeprefix("span_kind_")
    return "" if text == "unspecified" else text


def _status(raw: Mapping[str, Any] | None) -> int | None:
    code = (raw or {}).get("code")
    if isinstance(code, str):
        return {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}.get(code)
    return code if isinstance(code, int) else None


def spans(doc: Mapping[str, Any]) -> Iterable[tuple[str, Span]]:
    """(trace id, span) for every span of an OTLP document."""
    batches = doc.get("resourceSpans")
    if batches is None:
        batches = doc.get("batches", [])
    for batch in batches:
        process = attributes((batch.get("resource") or {}).get("attributes"))
        service = process.get("service.name", "unknown")
        for scope in batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or []:
            for raw in scope.get("spans", []):
                tags = attributes(raw.get("attributes"))
                start_ns = int(raw.get("startTimeUnixNano") or 0)
                end_ns = int(raw.get("endTimeUnixNano") or start_ns)
                status = raw.get("status")
                message = (status or {}).get("message")
                if message:
                    tags.setdefault("otel.status_description", str(message))
                events = tuple(
                    SpanEvent(
                        int(e.get("timeUnixNano") or 0) // 1000,
                        e.get("name", ""),
                        attributes(e.get("attributes")),
                    )
                    for e in raw.get("events", [])
                )
                yield (
                    hex_id(raw.get("traceId")),
                    Span(
                        span_id=hex_id(raw.get("spanId")),
                        parent_id=hex_id(raw.get("parentSpanId")) or None,
                        service=service,
                        operation=raw.get("name", ""),
                        start_us=start_ns // 1000,
                        duration_us=max(0, end_ns - start_ns) // 1000,
                        error=is_error(tags, _status(status)),
                        tags=tags,
                        kind=_kind(raw.get("kind")),
                        events=events,
                        process=process,
                    ),
                )


def traces(doc: Mapping[str, Any], max_spans: int | None = None) -> list[Trace]:
    """The traces of an OTLP document, grouped by trace id, in the order first seen.
    A trace of more than `max_spans` spans raises `TooManySpans` (None: no cap)."""
    grouped: dict[str, list[Span]] = {}
    for trace_id, span in spans(doc):
        found = grouped.setdefault(trace_id, [])
        found.append(span)
        check_spans(len(found), max_spans)
    return [Trace(trace_id, tuple(found)) for trace_id, found in grouped.items()]
