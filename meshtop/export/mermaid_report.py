"""`--format mermaid`: the topology as a Mermaid flowchart, for Markdown that renders it
(GitHub, GitLab, wikis): one subgraph per namespace, health as classes and link styles."""

from __future__ import annotations

from collections import defaultdict

from meshtop.export.drawing import COLOURS, WIDTHS, edge_label, group_of, node_label
from meshtop.model import Health
from meshtop.report import Report

DASHES = {Health.DEGRADED: ",stroke-dasharray:5 3", Health.IDLE: ",stroke-dasharray:2 2"}


def text(label: str) -> str:
    """A Mermaid string: `#` first (it starts an entity), then quotes, backticks (a
    Markdown string) and angle brackets, as entities."""
    for char, entity in (("#", "#35;"), ('"', "#quot;"), ("`", "#96;"), ("<", "#lt;"),
                         (">", "#gt;")):  # fmt: skip
        label = label.replace(char, entity)
    return '"' + label + '"'


def render(report: Report) -> str:
    snapshot, grades = report.snapshot, report.grades
    ids = {node_id: f"n{i}" for i, node_id in enumerate(sorted(snapshot.nodes))}
    lines = ["flowchart LR"]
    groups: dict[str, list[str]] = defaultdict(list)
    for node_id, w in sorted(snapshot.nodes.items()):
        groups[group_of(w)].append(node_id)
    for i, (group, members) in enumerate(sorted(groups.items())):
        lines.append(f"  subgraph ns{i}[{text(group)}]")
        lines += [f"    {ids[n]}[{text(node_label(snapshot.nodes[n]))}]" for n in members]
        lines.append("  end")
    edges = sorted(snapshot.edges, key=lambda e: e.key)
    for e in edges:
        lines.append(f"  {ids[e.source]} -->|{text(edge_label(e))}| {ids[e.destination]}")
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
