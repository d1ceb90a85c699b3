"""What an edge's or a node's detail screen shows first, from the snapshot, before its
history arrives: an edge's figures now and why it has its health; a node's calls, the
members that make a group unhealthy, and the routes that send traffic to it."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from meshtop import units
from meshtop.detail import (
    Trouble,
    calls_of,
    one_place,
    routes_to,
    subject,
    traffic_policy,
    troubles,
)
from meshtop.graphview import GraphView, ViewEdge
from meshtop.health import MARGIN, Thresholds, client_error_rate, edge_health, explain, worst
from meshtop.model import MeshSnapshot, Protocol, TraceQuery
from meshtop.panels import Laid, now_table, routes_view
from meshtop.sanitize import shown
from meshtop.sources.protocols import MetricsSource, TraceSource
from meshtop.tui.screens.detail import DetailScreen

# Rows of each list a node's detail shows first (its members, the troubles in it, its calls
# each way, the routes to it): a namespace's box at 20,000 services has hundreds of each,
# which Rich laid out in full on the screen's thread as the screen opened (0.4-0.9 s).
# The rest is said in a line; the tables of the console list every one.
LISTED = 20


def _more(count: int, where: str) -> Text:
    return Text(f"  … {count:,} more: {where}", style="dim")


def _more_calls(untold: list[str]) -> Text:
    said = " and ".join(untold)
    return Text(f"  … {said} calls more, the quietest: the edge table (2) lists each", style="dim")


def edge_screen(
    metrics: MetricsSource,
    snapshot: MeshSnapshot,
    view: GraphView,
    e: ViewEdge,
    window_s: float,
    t: Thresholds,
    chosen: Callable[[float], None] | None = None,
    traces: TraceSource | None = None,
) -> DetailScreen:
    src, dst = view.nodes[e.source].label, view.nodes[e.destination].label
    sources = sorted({a for a, _ in e.members})
    destinations = sorted({b for _, b in e.members})
    parts: list[RenderableType] = [
        Text(explain(e.stats, t)),
        Text(""),
        Text("Now", style="bold"),
        now_table(e.stats),
    ]
    if len(e.members) > 1:
        parts.append(Text(f"{len(e.members)} workload edges, drawn as one:", style="dim"))
        parts.extend(Text(shown(f"  {a} → {b}"), style="dim") for a, b in e.members[:LISTED])
        if len(e.members) > LISTED:
            parts.append(_more(len(e.members) - LISTED, "the edge table (2) lists each"))
    about = subject(snapshot, f"{src} → {dst}", sources, destinations)
    screen = DetailScreen(metrics, about, window_s, Group(*parts), chosen=chosen)
    screen.tcp = e.stats.protocol is Protocol.TCP
    screen.traces = traces
    screen.policy = traffic_policy(snapshot, destinations, e.stats, snapshot.generated_at)
    a, b = snapshot.nodes.get(sources[0]), snapshot.nodes.get(destinations[0])
    if a is not None and b is not None:
        one = len(sources) == 1 and len(destinations) == 1  # else any version of the apps
        screen.trace_query = TraceQuery(
            a.app or a.name, b.app or b.name.removeprefix("service:"),
            namespace=a.namespace, peer_namespace=b.namespace,
            version=a.version if one else "", peer_version=b.version if one else "",
        )  # fmt: skip
    return screen


def node_screen(
    metrics: MetricsSource,
    snapshot: MeshSnapshot,
    view: GraphView,
    node: str,
    window_s: float,
    t: Thresholds,
    chosen: Callable[[float], None] | None = None,
    traces: TraceSource | None = None,
) -> DetailScreen:
    n = view.nodes[node]
    inbound = [e for e in view.edges.values() if e.destination == node]
    outbound = [e for e in view.edges.values() if e.source == node]
    judged = inbound or outbound
    health = n.health  # the worst of its members', calls among them included
    problems = troubles(snapshot, view.grades, n.members) if len(n.members) > 1 else []
    worst_call = max(
        (e for e in judged if e.health is health), key=lambda e: e.stats.rps, default=None
    )
    first = next((p for p in problems if not p.call), None)
    if worst_call is None and first is not None:
        why = (
            f"{health.value}: its worst member, {first.what}, is {explain(first.stats, t)} "
            f"({first.via})"
        )
    elif worst_call is None:
        why = "idle: no calls in the window"
    else:
        call = f"{view.nodes[worst_call.source].label} → {view.nodes[worst_call.destination].label}"
        side = "inbound" if inbound else "outbound"
        why = f"its worst {side} call, {call}, is {explain(worst_call.stats, t)}"
        held = calls_of(snapshot, worst_call.members)  # not a mapping of every edge
        graded = worst(edge_health(c.stats, t) for c in held)
        if graded is not health:  # held by the console's memory
            why += (
                f" (shown {health.value}: a health changes once past a threshold by "
                f"{MARGIN:.0%} of it, or after two refreshes in a row)"
            )
    calls = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("", "peer", "rps", "errors", "p50", "p99", "mTLS", "health"):
        calls.add_column(
            column, justify="right" if column in ("rps", "errors", "p50", "p99", "mTLS") else "left"
        )
    untold = []
    for direction, edges in (("from", inbound), ("to", outbound)):
        busiest = sorted(edges, key=lambda e: -e.stats.rps)
        if len(busiest) > LISTED:
            untold.append(
                f"{len(busiest) - LISTED:,} {'inbound' if direction == 'from' else 'outbound'}"
            )
        for e in busiest[:LISTED]:
            peer = view.nodes[e.source if direction == "from" else e.destination].label
            s = e.stats
            calls.add_row(direction, Text(shown(peer)), units.rps(s.rps),
                          units.percent(s.error_rate),
                          units.ms(s.p50_ms), units.ms(s.p99_ms), units.percent(s.mtls),
                          e.health.value)  # fmt: skip
    intro = Group(
        Text(shown(_members(n.namespace, n.kind.value, n.members)), style="dim"),
        Text(shown(why)),
        *(_troubles_view(problems) if problems else ()),
        Text(""),
        Text("Calls now", style="bold"),
        Laid(calls),
        *([_more_calls(untold)] if untold else []),
    )
    routes = routes_to(snapshot, n.members)
    version = next(iter({snapshot.nodes[m].version for m in n.members if m in snapshot.nodes}), "")
    after = (
        Group(
            Text(""),
            Text("Routes to it", style="bold"),
            Laid(routes_view(routes[:LISTED], version)),
            *(
                [_more(len(routes) - LISTED, "the routes tab (3) lists each")]
                if len(routes) > LISTED
                else []
            ),
        )
        if routes
        else Text(
            "\nno route sends traffic here by weight (or the control plane is not read)",
            style="dim",
        )
    )
    # what a node answers; for one that answers nothing (a gateway, a client), what it calls
    about = subject(snapshot, n.label, (), n.members, outbound=not inbound and bool(outbound))
    screen = DetailScreen(metrics, about, window_s, intro, after, chosen=chosen)
    screen.traces = traces
    w = snapshot.nodes.get(n.members[0])
    if w is not None:
        versions = {snapshot.nodes[m].version for m in n.members if m in snapshot.nodes}
        screen.trace_query = TraceQuery(
            w.app or w.name, namespace=w.namespace,
            version=w.version if len(versions) == 1 else "",
        )  # fmt: skip
    return screen


def _members(namespace: str, kind: str, members: tuple[str, ...]) -> str:
    """Where a node is, its kind, and its first `LISTED` members and how many more: by
    name where they share one cluster and namespace, said once before them. Each in full
    (`Kubernetes/accounts-34/accounts-api-v1`) took a line of its own at 80 columns: a
    namespace's twenty pushed what is wrong in it off the first screen."""
    place = one_place(members)
    if place is not None and not place.startswith(("unknown/", "external/")):
        where, names = place, [m[len(place) + 1 :] for m in members]
    else:
        where, names = namespace, list(members)
    listed = ", ".join(names[:LISTED])
    if len(names) > LISTED:
        listed += f" and {len(names) - LISTED:,} more"
    return f"{where} · {kind} · {listed}"


def _troubles_view(problems: list[Trouble]) -> list[RenderableType]:
    """A group's members that make it unhealthy, and their calls: a failing call among
    them is not drawn in the graph, so it is named here."""
    level = problems[0].health.value
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for column in ("", "member", "errors", "4xx", "rps", ""):
        table.add_column(column, justify="right" if column in ("errors", "4xx", "rps") else "left")
    for p in problems[:LISTED]:
        s = p.stats
        note = "inside, not drawn" if p.inside else p.via
        figures = (
            units.percent(s.error_rate),
            units.percent(client_error_rate(s)),
            units.rps(s.rps),
        )
        table.add_row("call" if p.call else "workload", Text(shown(p.what)), *figures,
                      Text(shown(note)))  # fmt: skip
    rest = (
        [_more(len(problems) - LISTED, "the stat tab (4) lists each")]
        if len(problems) > LISTED
        else []
    )
    return [Text(""), Text(f"{level.capitalize()} in it", style="bold"), Laid(table), *rest]
