"""The data meshtop passes around: workloads, edges and their stats, routes (with their
resilience policy, `model/policy.py`), and the immutable `MeshSnapshot` that joins them,
with its topology as a networkx graph; traces (`model/traces.py`) and figures over a
window (`model/stats.py`) are importable from here too."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING

from meshtop.model.policy import CircuitBreaker as CircuitBreaker
from meshtop.model.policy import Fault as Fault
from meshtop.model.policy import Retries as Retries
from meshtop.model.policy import RulePolicy as RulePolicy
from meshtop.model.stats import ERROR_KINDS as ERROR_KINDS
from meshtop.model.stats import History as History
from meshtop.model.stats import Series as Series
from meshtop.model.stats import WindowSummary as WindowSummary
from meshtop.model.stats import add_rates as add_rates
from meshtop.model.stats import client_errors as client_errors
from meshtop.model.stats import counts_as_error as counts_as_error
from meshtop.model.stats import error_kind as error_kind
from meshtop.model.traces import Span as Span
from meshtop.model.traces import SpanEvent as SpanEvent
from meshtop.model.traces import Trace as Trace
from meshtop.model.traces import TraceQuery as TraceQuery
from meshtop.model.traces import TraceSummary as TraceSummary

if TYPE_CHECKING:
    import networkx as nx

UNKNOWN = "unknown"
EXTERNAL = "external"
SERVICE_PREFIX = "service:"
RBAC = "RBAC"  # Envoy's response flag for a request its RBAC filter denied


class NodeKind(enum.StrEnum):
    """What a node in the mesh graph stands for."""

    WORKLOAD = "workload"  # a Deployment, StatefulSet, … with a proxy or without
    SERVICE = "service"  # a service no workload answered for (no route, no healthy upstream)
    EXTERNAL = "external"  # a host outside the mesh (PassthroughCluster, no ServiceEntry)
    UNKNOWN = "unknown"  # a peer the proxy could not identify (unmeshed client)
    # outside Kubernetes (issue 22): a workload on a VM (a WorkloadEntry, or a
    # WorkloadGroup's), with a proxy; and a host a ServiceEntry declares
    VM = "vm"
    SERVICE_ENTRY = "service_entry"


# The kinds that are workloads: they run a proxy (or may), have a namespace and an identity.
WORKLOAD_KINDS = frozenset({NodeKind.WORKLOAD, NodeKind.VM})


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
        return self.kind not in (NodeKind.UNKNOWN, NodeKind.EXTERNAL, NodeKind.SERVICE_ENTRY)

    @property
    def is_workload(self) -> bool:
        """Whether it is a workload, in Kubernetes or on a VM."""
        return self.kind in WORKLOAD_KINDS

    @property
    def label(self) -> str:
        """Short name for tables: `namespace/workload`, or the host, or `unknown`."""
        if self.kind is NodeKind.UNKNOWN:  # an unnamed caller still has its namespace
            return UNKNOWN if self.mark is None else f"{self.namespace}/{self.name}"
        if self.kind in (NodeKind.EXTERNAL, NodeKind.SERVICE_ENTRY):
            return self.name
        return f"{self.namespace}/{self.name}"

    @staticmethod
    def unknown() -> Workload:
        return Workload(UNKNOWN, UNKNOWN, UNKNOWN, kind=NodeKind.UNKNOWN)

    @staticmethod
    def external(host: str, mark: NodeMark | None = None) -> Workload:
        return Workload(EXTERNAL, EXTERNAL, host, app=host, kind=NodeKind.EXTERNAL, mark=mark)

    @staticmethod
    def service_entry(host: str) -> Workload:
        """A host a ServiceEntry declares: the node of the same id as the telemetry's
        external host, of its own kind."""
        return Workload(EXTERNAL, EXTERNAL, host, app=host, kind=NodeKind.SERVICE_ENTRY)

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
    def denied_rps(self) -> float:
        """Requests per second an Envoy RBAC filter denied (the `RBAC` response flag, as
        Istio's `response_flags` label carries it: an AuthorizationPolicy's 403)."""
        return sum(v for flags, v in self.response_flags.items() if RBAC in flags.split(","))

    @property
    def carried(self) -> tuple[Protocol, ...]:
        """Every protocol the edge carries, most traffic first."""
        return self.protocols or (self.protocol,)


class EdgeStatsDraft:
    """`EdgeStats`'s slots, unfrozen: filled field by field (plain stores), then given the
    class `EdgeStats`, which the same slots allow (`draft.__class__ = EdgeStats`). A frozen
    dataclass's `__init__` sets each field through `object.__setattr__`: the simulator's
    51,239 edges and a view's 6,055 lines a refresh at 20,000 services made that way cost
    about twice as much (issue 17). Whoever fills one sets every field."""

    __slots__ = EdgeStats.__slots__
    protocol: Protocol
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mtls: float
    response_codes: Mapping[str, float]
    response_flags: Mapping[str, float]
    grpc_statuses: Mapping[str, float]
    tcp_request_bps: float
    tcp_response_bps: float
    tcp_connections_per_s: float
    protocols: tuple[Protocol, ...]


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
    policy: RulePolicy = field(default_factory=RulePolicy)  # fault, timeout, retries (issue 21)


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
    fault_expires: datetime | None = None  # when meshtop's injected fault ends (annotation)

    @property
    def id(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.kind}/{self.name}"


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
    latency_age_s: float | None = None  # its latency this much older than its rates

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
    breakers: tuple[CircuitBreaker, ...] = ()  # DestinationRules' pools and outlier detection

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

    @cached_property
    def ends(self) -> tuple[list[str], list[str]]:
        """Each edge's source and each edge's destination, in the edges' order: what the
        views, the grades and the history compare to find a refresh of the same calls,
        made once a snapshot (51,239 edges at 20,000 services: three times 4-12 ms a
        refresh when each made its own, issue 17). Shared: never changed."""
        return list(map(_source, self.edges)), list(map(_destination, self.edges))

    def edge(self, source: str, destination: str) -> Edge | None:
        return self._edges_by_key.get((source, destination))

    @cached_property
    def _edges_by_key(self) -> dict[tuple[str, str], Edge]:
        return {e.key: e for e in self.edges}


_source, _destination = attrgetter("source"), attrgetter("destination")


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
