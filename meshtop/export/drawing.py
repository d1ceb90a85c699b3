"""What the graph formats (DOT, Mermaid, SVG, HTML) share: the colour and line style of
each health, a node's and an edge's label, and the namespace each node is drawn in. The
colours are Okabe and Ito's, told apart with colour blindness; the line style tells
health without colour too (solid, dashed, bold), as the console's borders do. With
several clusters, namespaces are drawn inside their cluster's box."""

from __future__ import annotations

from collections.abc import Mapping

from meshtop import policy_view, units
from meshtop.model import (
    Edge,
    Health,
    MeshSnapshot,
    NodeKind,
    Protocol,
    Workload,
    clusters,
    marked,
)

COLOURS = {
    Health.HEALTHY: "#009E73",  # bluish green
    Health.DEGRADED: "#E69F00",  # orange
    Health.FAILING: "#D55E00",  # vermillion
    Health.IDLE: "#999999",
}
STYLES = {Health.HEALTHY: "solid", Health.DEGRADED: "dashed", Health.FAILING: "bold",
          Health.IDLE: "dotted"}  # fmt: skip
WIDTHS = {Health.HEALTHY: 1.5, Health.DEGRADED: 2.0, Health.FAILING: 3.0, Health.IDLE: 1.0}


def node_label(w: Workload) -> str:
    """The workload (or host) alone: the namespace is the box around it."""
    if w.mark is not None:  # what is doubtful about it, rather than its kind
        return marked(w.mark, w.name.removeprefix("service:"))
    if w.kind is NodeKind.SERVICE:
        return w.name.removeprefix("service:") + " (no workload)"
    if w.kind is NodeKind.UNKNOWN:
        return "unknown (no proxy)"
    if w.kind is NodeKind.VM:
        return f"{w.name} (VM)"
    return w.name


def nested(nodes: Mapping[str, Workload]) -> dict[str, dict[str, list[str]]]:
    """Node ids by cluster, then namespace, each in order of name. With one cluster (or
    none) everything is under "": the drawing then has no cluster boxes; nodes outside
    every cluster are under "" too."""
    several = len(clusters(nodes.values())) > 1
    out: dict[str, dict[str, list[str]]] = {}
    for node_id, w in sorted(nodes.items()):
        cluster = w.cluster if several and w.clustered else ""
        out.setdefault(cluster, {}).setdefault(w.namespace, []).append(node_id)
    ordered = sorted(out.items(), key=lambda kv: (not kv[0], kv[0]))
    return {cluster: dict(sorted(namespaces.items())) for cluster, namespaces in ordered}


def group_of(w: Workload, several: bool = False) -> str:
    """The band a node is drawn in: its namespace, inside its cluster when `several`."""
    return f"{w.cluster}/{w.namespace}" if several and w.clustered else w.namespace


def crossing(e: Edge, nodes: Mapping[str, Workload]) -> str:
    """`east → west` for a call from one cluster to another, else ""."""
    a, b = nodes.get(e.source), nodes.get(e.destination)
    if a is None or b is None or not (a.clustered and b.clustered) or a.cluster == b.cluster:
        return ""
    return f"{a.cluster} → {b.cluster}"


def fault_marks(snapshot: MeshSnapshot) -> dict[str, str]:
    """Node id -> `fault injected` (or `fault EXPIRED`, past the end meshtop set) for
    every node whose incoming calls a route injects a fault into, so that a drawing
    tells a test from an outage (issue 21)."""
    if not policy_view.faults(snapshot.routes):
        return {}
    now = snapshot.generated_at
    return {
        node_id: "fault EXPIRED" if found.expired(now) else "fault injected"
        for node_id, found in policy_view.by_destination(snapshot).items()
        if found.faults
    }


def edge_label(e: Edge, nodes: Mapping[str, Workload] | None = None, fault: str = "") -> str:
    """`19.5rps · 0.00% · p99 62ms`, `plaintext` when not all on mTLS, `⇄ east →
    west` for a call between clusters (given the nodes), and `fault injected` (given
    `fault_marks`' word for its destination)."""
    s = e.stats
    if s.protocol is Protocol.TCP:
        parts = [f"{s.tcp_connections_per_s:.2f} conn/s", units.bytes_per_s(s.tcp_request_bps)]
    else:
        parts = [units.rps(s.rps), units.percent(s.error_rate), f"p99 {units.ms(s.p99_ms)}"]
    if s.mtls < 1.0:
        parts.append("plaintext" if s.mtls == 0 else f"mTLS {units.percent(s.mtls)}")
    between = crossing(e, nodes) if nodes is not None else ""
    if between:
        parts.append(f"⇄ {between}")
    if fault:
        parts.append(fault)
    return " · ".join(parts)
