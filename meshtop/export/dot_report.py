"""`--format dot`: the topology for Graphviz (`dot -Tsvg`), one cluster per namespace,
nodes and calls coloured and styled by health, each call labelled with its figures."""

from __future__ import annotations

from collections import defaultdict

from meshtop.export.drawing import COLOURS, STYLES, WIDTHS, edge_label, group_of, node_label
from meshtop.report import Report


def quoted(text: str) -> str:
    """A DOT double-quoted ID: backslashes and quotes escaped, newlines as line breaks."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render(report: Report) -> str:
    snapshot, grades = report.snapshot, report.grades
    lines = [
        "digraph mesh {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=11];',
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    groups: dict[str, list[str]] = defaultdict(list)
    for node_id, w in sorted(snapshot.nodes.items()):
        groups[group_of(w)].append(node_id)
    for i, (group, members) in enumerate(sorted(groups.items())):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f'    label={quoted(group)}; style=rounded; color="#bbbbbb";')
        for node_id in members:
            health = grades.nodes[node_id]
            style = "rounded" if STYLES[health] == "solid" else f"rounded,{STYLES[health]}"
            lines.append(
                f"    {quoted(node_id)} [label={quoted(node_label(snapshot.nodes[node_id]))}, "
                f'color="{COLOURS[health]}", style="{style}", penwidth={WIDTHS[health]}];'
            )
        lines.append("  }")
    for e in sorted(snapshot.edges, key=lambda e: e.key):
        health = grades.edges[e.key]
        lines.append(
            f"  {quoted(e.source)} -> {quoted(e.destination)} [label={quoted(edge_label(e))}, "
            f'color="{COLOURS[health]}", fontcolor="{COLOURS[health]}", '
            f"style={STYLES[health]}, penwidth={WIDTHS[health]}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
