"""`--format mermaid`: the topology as a Mermaid flowchart, for Markdown that renders it
(GitHub, GitLab, wikis): one subgraph per namespace (inside one per cluster, when there
are several), health as classes and link styles."""

from __future__ import annotations

from meshtop.export import security
from meshtop.export.drawing import COLOURS, WIDTHS, edge_label, fault_marks, nested, node_label
from meshtop.model import Health
from meshtop.report import Report
from meshtop.sanitize import mermaid_label

DASHES = {Health.DEGRADED: ",stroke-dasharray:5 3", Health.IDLE: ",stroke-dasharray:2 2"}


def text(label: str) -> str:
    """A Mermaid string: controls shown, `#` first (it starts an entity), then `&`,
    quotes, backticks (a Markdown string) and angle brackets, as entities
    (`sanitize.mermaid_label`)."""
    return mermaid_label(label)


def render(report: Report) -> str:
    snapshot, grades = report.snapshot, report.grades
    ids = {node_id: f"n{i}" for i, node_id in enumerate(sorted(snapshot.nodes))}
    lines = ["flowchart LR"]
    i = 0
    for c, (cluster, namespaces) in enumerate(nested(snapshot.nodes).items()):
        pad = "    " if cluster else "  "
        if cluster:
            lines.append(f"  subgraph cl{c}[{text('cluster ' + cluster)}]")
        for namespace, members in namespaces.items():
            title = security.namespace_title(report, cluster, namespace)
            lines.append(f"{pad}subgraph ns{i}[{text(title)}]")
            lines += [f"{pad}  {ids[n]}[{text(node_label(snapshot.nodes[n]))}]" for n in members]
            lines.append(f"{pad}end")
            i += 1
        if cluster:
            lines.append("  end")
    edges = sorted(snapshot.edges, key=lambda e: e.key)
    faults = fault_marks(snapshot)
    for e in edges:
        said = edge_label(e, snapshot.nodes, faults.get(e.destination, ""))
        lines.append(f"  {ids[e.source]} -->|{text(said)}| {ids[e.destination]}")
    for health in Health:
        members = [ids[n] for n in sorted(snapshot.nodes) if grades.nodes[n] is health]
        lines.append(
            f"  classDef {health.value} stroke:{COLOURS[health]},"
            f"stroke-width:{WIDTHS[health]}px{DASHES.get(health, '')}"
        )
        if members:
            lines.append(f"  class {','.join(members)} {health.value}")
    for i, e in enumerate(edges):
        health = grades.edges[e.key]
        lines.append(
            f"  linkStyle {i} stroke:{COLOURS[health]},stroke-width:{WIDTHS[health]}px"
            f"{DASHES.get(health, '')}"
        )
    return "\n".join(lines) + "\n"
