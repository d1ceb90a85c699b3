"""`enter` on a node or an edge: what meshtop knows of it now, in one dialog. (The panels
with history and the canary comparison build on this.)"""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from meshtop import units
from meshtop.graphview import GraphView, ViewEdge
from meshtop.model import EdgeStats, Protocol

FLAGS = {
    "UH": "no healthy upstream",
    "UF": "upstream connection failure",
    "UO": "upstream overflow (circuit breaking)",
    "NR": "no route configured",
    "URX": "upstream retry limit exceeded",
    "UT": "upstream request timeout",
    "DC": "downstream connection termination",
    "LR": "connection local reset",
    "UR": "upstream remote reset",
    "RL": "rate limited",
    "UAEX": "unauthorized (external authorization)",
}


def stats_table(s: EdgeStats) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold")
    t.add_column()
    if s.protocol is Protocol.TCP:
        t.add_row("protocol", "tcp")
        t.add_row("connections", f"{s.tcp_connections_per_s:.2f}/s")
        t.add_row("bytes out / back", f"{units.bytes_per_s(s.tcp_request_bps)} / "
                  f"{units.bytes_per_s(s.tcp_response_bps)}")  # fmt: skip
    else:
        t.add_row("protocol", s.protocol.value)
        t.add_row("requests", units.rps(s.rps))
        t.add_row("errors", units.percent(s.error_rate))
        t.add_row(
            "latency",
            f"p50 {units.ms(s.p50_ms)}  p95 {units.ms(s.p95_ms)}  p99 {units.ms(s.p99_ms)}",
        )
    t.add_row("mTLS", units.percent(s.mtls))
    for title, rates in (("codes", s.response_codes), ("gRPC", s.grpc_statuses)):
        if rates:
            total = sum(rates.values()) or 1.0
            t.add_row(
                title,
                "  ".join(
                    f"{k} {units.rps(v)} ({v / total:.0%})" for k, v in sorted(rates.items())
                ),
            )
    for flag, rps in sorted(s.response_flags.items()):
        t.add_row(
            "flag " + flag, f"{units.rps(rps)}  {FLAGS.get(flag, 'see Envoy response flags')}"
        )
    return t


def edge_detail(view: GraphView, e: ViewEdge) -> RenderableType:
    src, dst = view.nodes[e.source].label, view.nodes[e.destination].label
    parts: list[RenderableType] = [
        Text(f"{src} → {dst}", style="bold"),
        Text(e.health.value),
        stats_table(e.stats),
    ]
    if len(e.members) > 1:
        parts.append(Text(f"\n{len(e.members)} workload edges, drawn as one:", style="dim"))
        parts.extend(Text(f"  {a} → {b}", style="dim") for a, b in e.members)
    return Group(*parts)


def node_detail(view: GraphView, node: str) -> RenderableType:
    n = view.nodes[node]
    t = Table(box=None, padding=(0, 1))
    for column in ("", "peer", "rps", "errors", "p95", "mTLS"):
        t.add_column(column)
    for e in sorted(view.edges.values(), key=lambda e: -e.stats.rps):
        if node not in e.key:
            continue
        inbound = e.destination == node
        peer = view.nodes[e.source if inbound else e.destination].label
        s = e.stats
        t.add_row("from" if inbound else "to", peer, units.rps(s.rps), units.percent(s.error_rate),
                  units.ms(s.p95_ms), units.percent(s.mtls))  # fmt: skip
    members = Text("\n".join(n.members), style="dim")
    return Group(
        Text(f"{n.label}  ({n.namespace}, {n.kind.value})", style="bold"),
        Text(n.health.value),
        t,
        members,
    )


class DetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,enter", "app.pop_screen", "close")]

    def __init__(self, body: RenderableType) -> None:
        super().__init__()
        self.body = body

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(self.body)
