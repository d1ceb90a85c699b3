"""A trace as meshtop holds it: spans and their events, a trace found by a search, and
the query that finds one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A log line or event inside a span: when, what, and its fields."""

    time_us: int
    name: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Span:
    span_id: str  # lower-case hex, whatever the backend sent
    parent_id: str | None
    service: str
    operation: str
    start_us: int  # microseconds since the epoch
    duration_us: int
    error: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    kind: str = ""  # client, server, producer, consumer, internal ("" when not said)
    events: tuple[SpanEvent, ...] = ()
    process: Mapping[str, str] = field(default_factory=dict)  # the resource's attributes

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us


@dataclass(frozen=True, slots=True)
class Trace:
    trace_id: str
    spans: tuple[Span, ...]

    @property
    def root(self) -> Span | None:
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]
        return min(roots, key=lambda s: s.start_us) if roots else None

    @property
    def start_us(self) -> int:
        return min((s.start_us for s in self.spans), default=0)

    @property
    def duration_us(self) -> int:
        if not self.spans:
            return 0
        return max(s.end_us for s in self.spans) - self.start_us

    @property
    def has_error(self) -> bool:
        return any(s.error for s in self.spans)


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One line of a trace list. A search API may not say everything (Tempo's tells the
    matched spans, not all): what it does not say is None."""

    trace_id: str
    start_us: int
    duration_us: int
    root: str  # "service: operation" of the root span
    services: tuple[str, ...]
    span_count: int | None
    error: bool | None
    # whether a span of the service the list was asked for failed (its "errors only");
    # None where the search does not say
    failed_here: bool | None = None

    @staticmethod
    def of(trace: Trace) -> TraceSummary:
        root = trace.root
        return TraceSummary(
            trace.trace_id,
            trace.start_us,
            trace.duration_us,
            f"{root.service}: {root.operation}" if root else "",
            tuple(sorted({s.service for s in trace.spans})),
            len(trace.spans),
            trace.has_error,
        )


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """Which traces to list: those that touched `service` (and, for an edge, where it
    called `peer_service`), optionally only failing ones, slower than `min_duration_ms`,
    or of one operation; over the `lookback_s` before `end_s` (a Unix time; None: now,
    the console's past moment otherwise). Services are canonical names (the app), with
    their namespace where known: Istio names a service `app.namespace`."""

    service: str
    peer_service: str | None = None
    errors_only: bool = False
    min_duration_ms: float | None = None
    limit: int = 20
    namespace: str = ""
    peer_namespace: str = ""
    operation: str | None = None
    lookback_s: float = 3600.0
    end_s: float | None = None  # the search's end; None: now
    version: str = ""  # a workload's version (Istio's canonical revision), "" for any
    peer_version: str = ""
