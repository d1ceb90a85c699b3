"""The data meshtop passes around: workloads, edges and their stats, routes, traces, and
the immutable `MeshSnapshot` that joins them, with its topology as a networkx graph."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx

UNKNOWN = "unknown"
EXTERNAL = "external"
SERVICE_PREFIX = "service:"


class NodeKind(enum.StrEnum):
    """What a node in the mesh graph stands for."""

    WORKLOAD = "workload"  # a Deployment, StatefulSet, … with a proxy or without
    SERVICE = "service"  # a service no workload answered for (no route, no healthy upstream)
    EXTERNAL = "external"  # a host outside the mesh (ServiceEntry or PassthroughCluster)
    UNKNOWN = "unknown"  # a peer the proxy could not identify (unmeshed client)


class NodeMark(enum.StrEnum):
    """What is doubtful about a node the telemetry named only in part. Kiali drops such
    nodes as "bad telemetry"; meshtop shows them, marked, so that no traffic vanishes."""

    RAW_IP = "raw_ip"  # a destination known only by an IP address: no service, no workload
    UNNAMED = "unnamed_workload"  # a caller in a real namespace whose workload was not named
    UNKNOWN_DESTINATION = "unknown_destination"  # the client's proxy could not tell where


# How each mark reads where a node is drawn or listed.
MARK_WORDS = {
    NodeMark.RAW_IP: "IP",
    NodeMark.UNNAMED: "unnamed",
    NodeMark.UNKNOWN_DESTINATION: "no route",
}


def marked(mark: NodeMark | None, name: str) -> str:
    """A node's name with what is doubtful about it, as it is drawn or listed:
    `10.1.2.3 (IP)`, `unknown (no route)`; the name alone when nothing is."""
    return name if mark is None else f"{name} ({MARK_WORDS[mark]})"


class Protocol(enum.StrEnum):
    HTTP = "http"
    GRPC = "grpc"
    TCP = "tcp"


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    IDLE = "idle"  # no traffic to judge by


@dataclass(frozen=True, slots=True)
class Workload:
    """A node of the mesh graph. Identity is `cluster/namespace/name`."""

    cluster: str
    namespace: str
    name: str
    app: str = ""
    version: str = ""
    kind: NodeKind = NodeKind.WORKLOAD
    mark: NodeMark | None = None

    @property
    def id(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"

    @property
    def clustered(self) -> bool:
        """Whether the node is in a cluster: not an unknown peer, not an external host."""
        return self.kind not in (NodeKind.UNKNOWN, NodeKind.EXTERNAL)

    @property
    def label(self) -> str:
        """Short name for tables: `namespace/workload`, or the host, or `unknown`."""
        if self.kind is NodeKind.UNKNOWN:  # an unnamed caller still has its namespace
            return UNKNOWN if self.mark is None else f"{self.namespace}/{self.name}"
        if self.kind is NodeKind.EXTERNAL:
            return self.name
        return f"{self.namespace}/{self.name}"

    @staticmethod
    def unknown() -> Workload:
        return Workload(UNKNOWN, UNKNOWN, UNKNOWN, kind=NodeKind.UNKNOWN)

    @staticmethod
    def external(host: str, mark: NodeMark | None = None) -> Workload:
        return Workload(EXTERNAL, EXTERNAL, host, app=host, kind=NodeKind.EXTERNAL, mark=mark)

    @staticmethod
    def unknown_destination(cluster: str, namespace: str) -> Workload:
        """Calls whose client's proxy could not tell where they went (a 404 `NR`: no
        route): one node per caller's namespace, never the unknown *source*'s."""
        return Workload(
            cluster,
            namespace,
            SERVICE_PREFIX + UNKNOWN,
            app=UNKNOWN,
            kind=NodeKind.SERVICE,
            mark=NodeMark.UNKNOWN_DESTINATION,
        )

    @staticmethod
    def unnamed(cluster: str, namespace: str) -> Workload:
        """A caller the telemetry places in a real namespace without naming its workload
        or app (Kiali's "bad source telemetry", as while a pod starts or stops)."""
        return Workload(
            cluster, namespace, UNKNOWN, app=UNKNOWN, kind=NodeKind.UNKNOWN, mark=NodeMark.UNNAMED
        )

    @staticmethod
    def service(cluster: str, namespace: str, service: str) -> Workload:
        """A service that no workload answered for, e.g. requests that ended in `NR`."""
        return Workload(
            cluster, namespace, SERVICE_PREFIX + service, app=service, kind=NodeKind.SERVICE
        )


@dataclass(frozen=True, slots=True)
class EdgeStats:
    """Traffic on one edge over the snapshot's window. Rates are per second; latencies are
    milliseconds (None where there is no HTTP/gRPC traffic to measure)."""

    protocol: Protocol = Protocol.HTTP  # the one that carries most of the traffic
    rps: float = 0.0
    error_rate: float = 0.0  # 0..1: HTTP 5xx, gRPC non-OK, no response
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mtls: float = 0.0  # share 0..1 of traffic on mutual TLS
    response_codes: Mapping[str, float] = field(default_factory=dict)  # code -> rps
    response_flags: Mapping[str, float] = field(default_factory=dict)  # Envoy flag -> rps
    grpc_statuses: Mapping[str, float] = field(default_factory=dict)  # gRPC status -> rps
    tcp_request_bps: float = 0.0  # bytes per second, source to destination
    tcp_response_bps: float = 0.0  # bytes per second, destination to source
    tcp_connections_per_s: float = 0.0
    # Every protocol the edge carries, most traffic first; empty: `protocol` alone.
    protocols: tuple[Protocol, ...] = ()

    @property
    def client_error_rate(self) -> float:
        """Share 0..1 of requests answered with an HTTP 4xx: the caller's mistakes, shown
        beside `error_rate`, never counted in it."""
        return client_errors(self.response_codes, self.rps)

    @property
    def carried(self) -> tuple[Protocol, ...]:
        """Every protocol the edge carries, most traffic first."""
        return self.protocols or (self.protocol,)


def client_errors(codes: Mapping[str, float], rps: float) -> float:
    """The share of `rps` answered with an HTTP 4xx status, by the rates of `codes`."""
    if not rps:
        return 0.0
    return sum(v for code, v in codes.items() if code.startswith("4")) / rps


def add_rates(maps: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Rates by key (`{"200": 4.0, "503": 0.1}`) of several edges, added up."""
    out: dict[str, float] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = out.get(k, 0.0) + v
    return out


@dataclass(frozen=True, slots=True)
class Edge:
    """Calls from one node to another, as seen by the mesh's proxies."""

    source: str  # node id
    destination: str  # node id
    stats: EdgeStats
    service: str = ""  # the destination service host the calls were addressed to

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.destination)


@dataclass(frozen=True, slots=True)
class WeightedDestination:
    host: str
    subset: str
    weight: int  # percent for a VirtualService; relative for an HTTPRoute backendRef
    port: int | None = None


@dataclass(frozen=True, slots=True)
class RouteRule:
    """One rule of a routing resource: its match conditions in words and where it sends."""

    destinations: tuple[WeightedDestination, ...]
    matches: tuple[str, ...] = ()  # empty: matches everything
    name: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    """A routing resource as read from the control plane, with the version it was read at,
    so that a change to it can be detected as a conflict rather than overwritten."""

    kind: str  # "VirtualService" or "HTTPRoute"
    cluster: str
    namespace: str
    name: str
    hosts: tuple[str, ...]
    rules: tuple[RouteRule, ...]
    resource_version: str
    steered_by: str = ""  # who else steers its weights (Flagger, Argo Rollouts), in words

    @property
    def id(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.kind}/{self.name}"


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
    or of one operation; over the last `lookback_s`. Services are canonical names (the
    app), with their namespace where known: Istio names a service `app.namespace`."""

    service: str
    peer_service: str | None = None
    errors_only: bool = False
    min_duration_ms: float | None = None
    limit: int = 20
    namespace: str = ""
    peer_namespace: str = ""
    operation: str | None = None
    lookback_s: float = 3600.0
    version: str = ""  # a workload's version (Istio's canonical revision), "" for any
    peer_version: str = ""


ERROR_KINDS = ("5xx", "4xx", "grpc", "no response", "failure")


def error_kind(code: str, grpc_status: str = "", failed: bool | None = None) -> str | None:
    """What kind of error one answer was, or None for a success. `failed` is the proxy's
    own verdict where the mesh gives one (Linkerd's classification). 4xx is a kind of its
    own: the caller's mistake, shown but not counted in the error rate."""
    if code == "0":
        return "no response"
    if grpc_status and grpc_status != "0":
        return "grpc"
    if code.startswith("5") and not grpc_status:
        return "5xx"
    if code.startswith("4"):
        return "4xx"
    return "failure" if failed else None


def counts_as_error(kind: str | None) -> bool:
    """Whether an answer of this kind counts in `error_rate`."""
    return kind is not None and kind != "4xx"


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """One edge (or everything one node answers) over a whole window: rates are averages
    per second, latencies `histogram_quantile` over the window. None: no such figure."""

    rps: float = 0.0
    error_rate: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mtls: float | None = None  # share on mutual TLS, from the proxies that know it
    response_codes: Mapping[str, float] = field(default_factory=dict)
    response_flags: Mapping[str, float] = field(default_factory=dict)
    grpc_statuses: Mapping[str, float] = field(default_factory=dict)
    errors: Mapping[str, float] = field(default_factory=dict)  # error kind -> rps
    # rps as each proxy reported it ("source", "destination", "waypoint", "outbound"):
    # a client proxy's count above the server's is requests that never arrived.
    by_reporter: Mapping[str, float] = field(default_factory=dict)
    source_principals: tuple[str, ...] = ()
    destination_principals: tuple[str, ...] = ()

    @property
    def client_error_rate(self) -> float | None:
        """Share 0..1 of requests answered with an HTTP 4xx; None without requests."""
        return client_errors(self.response_codes, self.rps) if self.rps else None


Series = tuple[float | None, ...]  # one value per point; None is a gap (no data)


@dataclass(frozen=True, slots=True)
class History:
    """An edge (or, with `source` None, everything a node answers) over a window, as
    points `step_s` apart ending at the window's end, and summed up over the window."""

    source: str | None
    destination: str | None
    window_s: float
    step_s: float
    times: tuple[float, ...]  # seconds since the epoch
    rps: Series
    error_rate: Series
    p50_ms: Series
    p95_ms: Series
    p99_ms: Series
    errors: Mapping[str, Series]  # error kind -> rps of that kind
    summary: WindowSummary


class SourceState(enum.StrEnum):
    FRESH = "fresh"
    STALE = "stale"  # the last answer is older than the last attempt, which failed
    FAILED = "failed"
    ABSENT = "absent"  # not configured


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str  # e.g. "simulated", "prometheus http://…"
    state: SourceState
    checked_at: datetime
    reason: str = ""
    duration_ms: float = 0.0
    fresh_at: datetime | None = None  # when it last answered well

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the source last answered well, None if it never did."""
        return None if self.fresh_at is None else (now - self.fresh_at).total_seconds()


class SourceKey(str):
    """Which source a health in a snapshot is of: its role (`metrics`, `control_plane`,
    `traces`) and, for one cluster's member of several, the cluster. It is the string the
    JSON report writes (`metrics`, `metrics:east`); `SourceKey.of(key)` reads one back."""

    __slots__ = ()

    def __new__(cls, role: str, cluster: str = "") -> SourceKey:
        return super().__new__(cls, f"{role}:{cluster}" if cluster else role)

    @staticmethod
    def of(key: str) -> SourceKey:
        role, _, cluster = key.partition(":")
        return SourceKey(role, cluster)

    @property
    def role(self) -> str:
        return self.partition(":")[0]

    @property
    def cluster(self) -> str:
        return self.partition(":")[2]


@dataclass(frozen=True)
class MeshSnapshot:
    """Everything a view needs for one refresh. Immutable; the graph is built on first use."""

    generated_at: datetime
    window_s: float
    nodes: Mapping[str, Workload]
    edges: tuple[Edge, ...]
    routes: tuple[Route, ...]
    sources: Mapping[str, SourceHealth]  # role ("metrics", "control_plane", "traces") -> health

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The topology: nodes keyed by id with `workload` attributes, edges with `stats`."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from((node_id, {"workload": w}) for node_id, w in self.nodes.items())
        g.add_edges_from(
            (e.source, e.destination, {"stats": e.stats, "service": e.service}) for e in self.edges
        )
        return g

    def edge(self, source: str, destination: str) -> Edge | None:
        return self._edges_by_key.get((source, destination))

    @cached_property
    def _edges_by_key(self) -> dict[tuple[str, str], Edge]:
        return {e.key: e for e in self.edges}


def clusters(workloads: Iterable[Workload]) -> list[str]:
    """The clusters the nodes are in, in order of name (peers outside any left out)."""
    return sorted({w.cluster for w in workloads if w.clustered})


def resolve_node(nodes: Mapping[str, Workload], text: str) -> str:
    """The id of the node `text` names: a full id `cluster/namespace/workload`, or any
    unambiguous shorter form (`namespace/workload`, `cluster/workload` as the edge table
    shows a workload that runs in several clusters, `workload`)."""
    from meshtop.errors import UsageError

    if text in nodes:
        return text
    matches = [
        node_id
        for node_id, w in nodes.items()
        if node_id.endswith("/" + text) or f"{w.cluster}/{w.name}" == text
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"no node {text!r} in the mesh; give cluster/namespace/workload")
    shown = ", ".join(sorted(matches)[:5])
    raise UsageError(f"{text!r} is ambiguous: it could be {shown}; give more of the id")
