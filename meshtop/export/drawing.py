"""What the graph formats (DOT, Mermaid, SVG, HTML) share: the colour and line style of
each health, a node's and an edge's label, and the namespace each node is drawn in. The
colours are Okabe and Ito's, told apart with colour blindness; the line style tells
health without colour too (solid, dashed, bold), as the console's borders do."""

from __future__ import annotations

from meshtop import units
from meshtop.model import Edge, Health, NodeKind, Protocol, Workload

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
    if w.kind is NodeKind.SERVICE:
        return w.name.removeprefix("service:") + " (no workload)"
    if w.kind is NodeKind.UNKNOWN:
        return "unknown (no proxy)"
    return w.name


def group_of(w: Workload) -> str:
    return w.namespace


def edge_label(e: Edge) -> str:
    """`19.5rps · 0.00% · p99 62ms`, and `plaintext` when not all on mTLS."""
    s = e.stats
    if s.protocol is Protocol.TCP:
        parts = [f"{s.tcp_connections_per_s:.2f} conn/s", units.bytes_per_s(s.tcp_request_bps)]
    else:
        parts = [units.rps(s.rps), units.percent(s.error_rate), f"p99 {units.ms(s.p99_ms)}"]
    if s.mtls < 1.0:
        parts.append("plaintext" if s.mtls == 0 else f"mTLS {units.percent(s.mtls)}")
    return " · ".join(parts)
