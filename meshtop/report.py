"""What a report covers, for every export format alike: the snapshot narrowed to some
namespaces, one edge or the worst N edges; its edges graded and ordered worst first; and
the security posture (calls not on mutual TLS, peers without a proxy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from meshtop.health import DEFAULT_THRESHOLDS, Grades, Thresholds, grade
from meshtop.model import (
    Edge,
    Health,
    MeshSnapshot,
    NodeKind,
    NodeMark,
    Protocol,
    Workload,
    clusters,
    resolve_node,
)
from meshtop.posture import (
    Caller,
    MtlsMode,
    Posture,
    SecurityConfig,
    config_for,
    in_plain_text,
    posture,
    strict_would_refuse,
    volume,
)

RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.HEALTHY: 2, Health.IDLE: 3}

_WITHOUT_PROXY = {
    NodeKind.UNKNOWN: "called the mesh without a proxy (the server's proxy could not identify it)",
    NodeKind.EXTERNAL: "outside the mesh: called through the client's proxy only",
    NodeKind.SERVICE_ENTRY: "a ServiceEntry's host: called through the client's proxy only",
    NodeKind.SERVICE: "no workload answered its calls",
}
_MARKED = {
    NodeMark.RAW_IP: "known only by its IP address, called through the client's proxy: no "
    "service and no workload known for it (a call by address, or telemetry written while a "
    "pod started or stopped)",
    NodeMark.UNNAMED: "a caller its namespace's telemetry did not name (no workload, no app): "
    "whether it has a proxy is not known",
    NodeMark.UNKNOWN_DESTINATION: "where the caller's proxy sent calls it could not route "
    "(no route, no cluster): no workload answered them",
}


def without_proxy(w: Workload) -> str:
    """Why a node is a peer without a proxy of its own, or a doubtful one, in words."""
    return _MARKED[w.mark] if w.mark is not None else _WITHOUT_PROXY[w.kind]


@dataclass(frozen=True, slots=True)
class Selection:
    namespaces: tuple[str, ...] = ()  # calls from or to any of them
    top: int | None = None  # the N worst edges
    edge: tuple[str, str] | None = None  # one edge, as the user named its ends


def select(snapshot: MeshSnapshot, chosen: Selection, t: Thresholds) -> MeshSnapshot:
    """The snapshot narrowed to the namespaces and the edge asked for (what gates and the
    security posture judge), then to the N worst edges when asked (what is shown).
    Raises `UsageError` for an edge's unknown end."""
    return worst(scoped(snapshot, chosen), chosen.top, t)


def scoped(snapshot: MeshSnapshot, chosen: Selection) -> MeshSnapshot:
    """The calls from or to the namespaces asked for, or the one edge asked for."""
    edges = list(snapshot.edges)
    if chosen.namespaces:
        wanted = set(chosen.namespaces)
        edges = [
            e
            for e in edges
            if snapshot.nodes[e.source].namespace in wanted
            or snapshot.nodes[e.destination].namespace in wanted
        ]
    if chosen.edge is not None:
        source = resolve_node(snapshot.nodes, chosen.edge[0])
        destination = resolve_node(snapshot.nodes, chosen.edge[1])
        edges = [e for e in edges if e.key == (source, destination)]
    if len(edges) == len(snapshot.edges):
        return snapshot
    return replace_edges(snapshot, edges)


def worst(snapshot: MeshSnapshot, top: int | None, t: Thresholds) -> MeshSnapshot:
    """The `top` worst edges of the snapshot (all when None)."""
    if top is None or top >= len(snapshot.edges):
        return snapshot
    return replace_edges(snapshot, worst_first(snapshot.edges, grade(snapshot, t))[:top])


def replace_edges(snapshot: MeshSnapshot, edges: Sequence[Edge]) -> MeshSnapshot:
    ends = {n for e in edges for n in e.key}
    nodes = {n: w for n, w in snapshot.nodes.items() if n in ends}
    return replace(snapshot, nodes=nodes, edges=tuple(edges))


def worst_first(edges: Sequence[Edge], grades: Grades) -> list[Edge]:
    """Failing, then degraded, healthy and idle; within each, most errors then most traffic."""
    return sorted(
        edges,
        key=lambda e: (RANK[grades.edges[e.key]], -e.stats.error_rate, -e.stats.rps, e.key),
    )


@dataclass(frozen=True)
class Report:
    """A snapshot as a report sees it: graded once, ordered once."""

    snapshot: MeshSnapshot
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    # What narrowed it, said in the report: `namespace shop`, `the 10 worst edges`.
    scope: tuple[str, ...] = field(default=())
    # The report's whole scope, before only the worst edges were kept: what the security
    # posture is about, so that a short report does not hide a plaintext call.
    whole: MeshSnapshot | None = None
    # Each cluster's security configuration, where it was read (the mTLS modes beside the
    # traffic), and the namespaces asked for (none: every namespace).
    security: Mapping[str, SecurityConfig] | None = None
    namespaces: tuple[str, ...] = ()

    @cached_property
    def grades(self) -> Grades:
        return grade(self.snapshot, self.thresholds)

    @cached_property
    def edges(self) -> list[Edge]:
        return worst_first(self.snapshot.edges, self.grades)

    def label(self, node_id: str) -> str:
        """`namespace/workload`, or `cluster/namespace/workload` in a mesh of several
        clusters, where the shorter one could be any cluster's."""
        w = self.snapshot.nodes.get(node_id) or (
            self.whole.nodes.get(node_id) if self.whole else None
        )
        if not isinstance(w, Workload):
            return node_id
        return f"{w.cluster}/{w.label}" if self.several_clusters and w.clustered else w.label

    @cached_property
    def several_clusters(self) -> bool:
        return len(clusters((self.whole or self.snapshot).nodes.values())) > 1

    @cached_property
    def plaintext(self) -> list[Edge]:
        """Calls not entirely on mutual TLS, most traffic first."""
        judged = self.whole or self.snapshot
        return sorted((e for e in judged.edges if in_plain_text(e)), key=lambda e: -volume(e))

    @cached_property
    def without_proxy(self) -> list[tuple[Workload, str]]:
        """Peers that spoke to the mesh without a proxy of their own, and how we know:
        clients the server's proxy could not identify, hosts outside the mesh, services
        whose calls no workload answered."""
        judged = self.whole or self.snapshot  # a peer of an edge --top left out still counts
        return [
            (w, without_proxy(w))
            for _, w in sorted(judged.nodes.items())
            if w.kind in _WITHOUT_PROXY or w.mark is not None
        ]

    @cached_property
    def posture(self) -> Posture | None:
        """Each namespace's and workload's effective mTLS mode beside its traffic, where
        the configuration was read; only the namespaces asked for, when some were."""
        if self.security is None:
            return None
        found = posture(self.whole or self.snapshot, self.security)
        if not self.namespaces:
            return found
        wanted = set(self.namespaces)
        kept = tuple(n for n in found.namespaces if n.namespace in wanted)
        conflicts = tuple(c for n in kept for w in n.workloads for c in w.conflicts)
        return replace(found, namespaces=kept, conflicts=conflicts)

    @cached_property
    def strict_would_break(self) -> dict[tuple[str, str], tuple[Caller, ...]]:
        """(cluster, namespace) -> the plaintext callers STRICT on the namespace would
        refuse, for each namespace of the posture that is not STRICT throughout."""
        found = self.posture
        if found is None or self.security is None:
            return {}
        out: dict[tuple[str, str], tuple[Caller, ...]] = {}
        for n in found.namespaces:
            config = config_for(self.security, n.cluster)
            if config is None or all(w.effective.mode is MtlsMode.STRICT for w in n.workloads):
                continue
            out[(n.cluster, n.namespace)] = strict_would_refuse(n, config)
        return out

    @cached_property
    def totals(self) -> dict[str, float]:
        http = [e for e in self.snapshot.edges if e.stats.protocol is not Protocol.TCP]
        counts = {h.value: 0.0 for h in Health}
        for h in self.grades.edges.values():
            counts[h.value] += 1
        return {"rps": sum(e.stats.rps for e in http), **counts}
