"""`--format dot`: the topology for Graphviz (`dot -Tsvg`), one cluster per namespace
(inside one per mesh cluster, when there are several),
nodes and calls coloured and styled by health, each call labelled with its figures."""

from __future__ import annotations

from meshtop.export import security
from meshtop.export.drawing import (
    COLOURS,
    STYLES,
    WIDTHS,
    edge_label,
    fault_marks,
    nested,
    node_label,
)
from meshtop.report import Report
from meshtop.sanitize import dot_string


def quoted(text: str) -> str:
    """A DOT double-quoted ID: controls shown, backslashes, quotes and `&` escaped,
    newlines as line breaks (`sanitize.dot_string`)."""
    return dot_string(text)


def render(report: Report) -> str:
    snapshot, grades = report.snapshot, report.grades
    lines = [
        "digraph mesh {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=11];',
        '  node [shape=box, style="rounded", fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]

    def node(node_id: str, indent: str) -> str:
        health = grades.nodes[node_id]
        style = "rounded" if STYLES[health] == "solid" else f"rounded,{STYLES[health]}"
        return (
            f"{indent}{quoted(node_id)} [label={quoted(node_label(snapshot.nodes[node_id]))}, "
            f'color="{COLOURS[health]}", style="{style}", penwidth={WIDTHS[health]}];'
        )

    i = 0
    for c, (cluster, namespaces) in enumerate(nested(snapshot.nodes).items()):
        pad = "    " if cluster else "  "
        if cluster:
            lines.append(f"  subgraph cluster_c{c} {{")
            lines.append(f'    label={quoted("cluster " + cluster)}; style=bold; color="#57606a";')
        for namespace, members in namespaces.items():
            lines.append(f"{pad}subgraph cluster_{i} {{")
            title = security.namespace_title(report, cluster, namespace)
            lines.append(f'{pad}  label={quoted(title)}; style=rounded; color="#bbbbbb";')
            lines += [node(n, pad + "  ") for n in members]
            lines.append(f"{pad}}}")
            i += 1
        if cluster:
            lines.append("  }")
    faults = fault_marks(snapshot)
    for e in sorted(snapshot.edges, key=lambda e: e.key):
        health = grades.edges[e.key]
        label = quoted(edge_label(e, snapshot.nodes, faults.get(e.destination, "")))
        lines.append(
            f"  {quoted(e.source)} -> {quoted(e.destination)} [label={label}, "
            f'color="{COLOURS[health]}", fontcolor="{COLOURS[health]}", '
            f"style={STYLES[health]}, penwidth={WIDTHS[health]}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
