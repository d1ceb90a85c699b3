"""`--format svg`: the topology drawing alone, laid out as the console lays it out (layers
left to right, a band per namespace, orthogonal lines), coloured and styled by health.
Each box and line carries its figures as a tooltip (`<title>`); lines show their rate."""

from __future__ import annotations

from meshtop import units
from meshtop.export import security
from meshtop.export.drawing import (
    COLOURS,
    STYLES,
    WIDTHS,
    crossing,
    edge_label,
    fault_marks,
    group_of,
    node_label,
)
from meshtop.layout import layout
from meshtop.model import Health, Protocol, clusters
from meshtop.report import Report
from meshtop.sanitize import xml_text

CW, CH = 8, 16  # pixels per terminal cell of the layout
DASH = {"dashed": "6 3", "dotted": "2 3"}


def _xy(x: int, y: int) -> str:
    return f"{x * CW + CW // 2},{y * CH + CH // 2}"


def _stroke(health: Health) -> str:
    dash = DASH.get(STYLES[health])
    out = f'stroke="{COLOURS[health]}" stroke-width="{WIDTHS[health]}"'
    return out + (f' stroke-dasharray="{dash}"' if dash else "")


def _title(report: Report, group: str) -> str:
    """A namespace band's title: `namespace`, or `cluster/namespace` with several."""
    cluster, _, namespace = group.rpartition("/")
    return security.namespace_title(report, cluster, namespace)


def drawing(report: Report) -> str:
    """The `<svg>` element, for a file of its own or inside the HTML report."""
    snapshot, grades = report.snapshot, report.grades
    nodes = snapshot.nodes
    labels = {n: node_label(w) for n, w in nodes.items()}
    several = len(clusters(nodes.values())) > 1
    placed = layout(
        nodes,
        [e.key for e in snapshot.edges],
        label=labels.__getitem__,
        group=lambda n: group_of(nodes[n], several),
    )
    width, height = (placed.width + 2) * CW, (placed.height + 2) * CH
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, '
        'sans-serif" font-size="12">',
        "<defs>",
        *(
            f'<marker id="arrow-{h.value}" viewBox="0 0 10 10" refX="9" refY="5" '
            f'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            f'<path d="M 0 0 L 10 5 L 0 10 z" fill="{COLOURS[h]}"/></marker>'
            for h in Health
        ),
        "</defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    for cluster, box in sorted(placed.clusters.items()):
        out.append(
            f'<g class="cluster"><rect x="{box.x * CW}" y="{box.y * CH + CH // 2}" '
            f'width="{box.w * CW}" height="{(box.h - 1) * CH}" rx="8" fill="none" '
            f'stroke="#57606a" stroke-width="2"/><text x="{box.x * CW + 8}" '
            f'y="{box.y * CH + CH // 2 + 14}" font-weight="bold" fill="#24292f">'
            f"cluster {xml_text(cluster)}</text></g>"
        )
    for group, box in sorted(placed.groups.items()):
        out.append(
            f'<g class="namespace"><rect x="{box.x * CW}" y="{box.y * CH + CH // 2}" '
            f'width="{box.w * CW}" height="{(box.h - 1) * CH}" rx="6" fill="#f6f8fa" '
            f'stroke="#c8cdd2"/><text x="{box.x * CW + 8}" y="{box.y * CH + CH // 2 + 14}" '
            f'fill="#57606a">{xml_text(_title(report, group))}</text></g>'
        )
    faults = fault_marks(snapshot)
    for e in sorted(snapshot.edges, key=lambda e: e.key):
        points = placed.routes.get(e.key)
        fault = faults.get(e.destination, "")
        health = grades.edges[e.key]
        s = e.stats
        if not points:
            home = placed.nodes.get(e.source)
            if e.source != e.destination or home is None:
                continue
            # a workload calling itself: a loop from its top edge round to its right side
            xr, top = (home.x + home.w) * CW, home.y * CH + 3
            x0 = xr - 2 * CW
            title = f"{report.label(e.source)} → itself: {edge_label(e, snapshot.nodes, fault)}"
            out.append(
                f'<g class="edge {health.value}"><title>{xml_text(title)}</title>'
                f'<path fill="none" {_stroke(health)} marker-end="url(#arrow-{health.value})" '
                f'd="M {x0} {top} C {x0} {top - 18}, {xr + 18} {top + 10}, {xr} {top + 10}"/></g>'
            )
            continue
        tcp = s.protocol is Protocol.TCP
        short = f"{s.tcp_connections_per_s:.2f} c/s" if tcp else units.rps(s.rps)
        if s.mtls < 1.0:
            short += " !"  # as in the console: not (all) on mutual TLS
        if crossing(e, nodes):
            short += " ⇄"  # and between clusters
        if fault:
            short += " FAULT"  # injected: a test, not an outage
        (x0, y0) = points[0]
        said = edge_label(e, snapshot.nodes, fault)
        title = f"{report.label(e.source)} → {report.label(e.destination)}: {said}"
        out.append(
            f'<g class="edge {health.value}"><title>{xml_text(title)}</title>'
            f'<polyline fill="none" {_stroke(health)} marker-end="url(#arrow-{health.value})" '
            f'points="{" ".join(_xy(x, y) for x, y in points)}"/>'
            f'<text x="{x0 * CW + CW + 2}" y="{y0 * CH + CH // 2 - 3}" font-size="10" '
            f'fill="{COLOURS[health]}">{xml_text(short)}</text></g>'
        )
    for node_id, box in sorted(placed.nodes.items()):
        health = grades.nodes[node_id]
        w = nodes[node_id]
        title = f"{w.label} ({w.kind.value}): {health.value}"
        out.append(
            f'<g class="node {health.value}"><title>{xml_text(title)}</title>'
            f'<rect x="{box.x * CW}" y="{box.y * CH + 3}" width="{box.w * CW}" '
            f'height="{box.h * CH - 6}" rx="6" fill="#ffffff" {_stroke(health)}/>'
            f'<text x="{box.x * CW + box.w * CW // 2}" y="{box.y * CH + CH + 12}" '
            f'text-anchor="middle" fill="#24292f">{xml_text(labels[node_id])}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


def render(report: Report) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + drawing(report) + "\n"
