"""`--format html`: one self-contained file (no external asset: styles, the drawing and
a few lines of script inline) with the topology drawn as SVG, coloured by health, and the
markdown report's tables, each sortable by a click on its header."""

from __future__ import annotations

from collections.abc import Sequence

from meshtop import units
from meshtop.export import security
from meshtop.export.drawing import COLOURS
from meshtop.export.markdown_report import (
    BREAKER_COLUMNS,
    EDGE_COLUMNS,
    ROUTE_COLUMNS,
    breaker_rows,
    by_namespace,
    edge_cells,
    route_rows,
    traffic,
)
from meshtop.export.svg_report import drawing
from meshtop.health import worst
from meshtop.model import Edge, Health
from meshtop.report import Report
from meshtop.sanitize import xml_text

STYLE = """
body { font: 14px/1.45 Helvetica, Arial, sans-serif; margin: 2em; color: #24292f; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { padding: 3px 10px; border-bottom: 1px solid #d0d7de; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { cursor: pointer; user-select: none; background: #f6f8fa; }
th[aria-sort=ascending]::after { content: " ▲"; }
th[aria-sort=descending]::after { content: " ▼"; }
.figure { overflow: auto; border: 1px solid #d0d7de; max-height: 80vh; }
.health { font-weight: 600; }
""" + "".join(f".h-{h.value} {{ color: {c}; }}\n" for h, c in COLOURS.items())

# Click a header to sort by its column; numbers by the value in data-v, else by the text.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th, _) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var down = th.getAttribute("aria-sort") !== "descending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    var key = function (row) {
      var cell = row.children[col], v = cell.getAttribute("data-v");
      return v === null ? cell.textContent : parseFloat(v);
    };
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      var order = (typeof x === "number" && typeof y === "number") ? x - y
        : String(x).localeCompare(String(y));
      return down ? -order : order;
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""

NUMERIC = {
    3: "rps", 4: "error_rate", 5: "client_error_rate", 6: "p50", 7: "p95", 8: "p99", 9: "mtls"
}  # fmt: skip


def _sort_value(e: Edge, column: int) -> float | None:
    s = e.stats
    values = {
        3: s.rps or s.tcp_connections_per_s,
        4: s.error_rate,
        5: s.client_error_rate,
        6: s.p50_ms,
        7: s.p95_ms,
        8: s.p99_ms,
        9: s.mtls,
    }
    return values.get(column)


def _edge_table(report: Report, edges: Sequence[Edge], table_id: str) -> str:
    head = "".join(f"<th>{xml_text(c)}</th>" for c in EDGE_COLUMNS)
    rows = []
    for e in edges:
        cells = []
        for i, text in enumerate(edge_cells(report, e)):
            if i in NUMERIC:
                v = _sort_value(e, i)
                data = f' data-v="{v:.6g}"' if v is not None else ' data-v="-1"'
                cells.append(f'<td class="n"{data}>{xml_text(text)}</td>')
            elif i == len(EDGE_COLUMNS) - 1:
                cells.append(f'<td class="health h-{text}">{xml_text(text)}</td>')
            else:
                cells.append(f"<td>{xml_text(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{chr(10).join(rows)}\n</tbody></table>"
    )


def _simple_table(table_id: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{xml_text(c)}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{xml_text(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def _modes(report: Report) -> list[str]:
    """The mTLS modes beside the traffic, where the configuration was read."""
    found = report.posture
    if found is None:
        return []
    parts = [
        '<h3 id="modes">mTLS modes</h3>',
        _simple_table("modes", security.NAMESPACE_COLUMNS, security.namespace_rows(report)),
        _simple_table("workload-modes", security.WORKLOAD_COLUMNS, security.workload_rows(report)),
    ]
    lines = security.said(found) + [f"policy: {p}" for p in found.policies]
    lines += [f"call: {c}" for c in security.authorizations(report)]
    if lines:
        parts += ["<ul>", *(f"<li>{xml_text(line)}</li>" for line in lines), "</ul>"]
    return parts


def render(report: Report) -> str:
    snapshot = report.snapshot
    totals = report.totals
    overall = worst(report.grades.edges.values())
    when = snapshot.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    scope = f" Scope: {xml_text(', '.join(report.scope))}." if report.scope else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>meshtop report {xml_text(when)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>meshtop report</h1>",
        f"<p>Generated {xml_text(when)} over a {units.duration(snapshot.window_s)} window.{scope} "
        f'Overall: <span class="health h-{overall.value}">{overall.value}</span>.</p>',
        _simple_table(
            "sources",
            ("source", "backend", "state", "detail"),
            [
                (role, h.name, h.state.value, h.reason or "-")
                for role, h in sorted(snapshot.sources.items())
            ],
        ),
        '<h2 id="summary">Summary</h2><ul>',
        f"<li>{len(snapshot.nodes)} nodes, {len(snapshot.edges)} edges, "
        f"{units.rps(totals['rps'])} of HTTP and gRPC requests</li>",
        "<li>edges "
        + ", ".join(
            f'<span class="h-{h.value}">{h.value}: {totals[h.value]:.0f}</span>' for h in Health
        )
        + "</li>",
        f"<li>edges not fully on mTLS: {len(report.plaintext)}; peers without a proxy: "
        f"{len(report.without_proxy)}</li></ul>",
        '<h2 id="topology">Topology</h2>',
        f'<div class="figure">{drawing(report)}</div>',
        '<h2 id="edges">Edges, worst first</h2>',
        _edge_table(report, report.edges, "edges-table"),
        '<h2 id="security">Security posture</h2>',
    ]
    if report.plaintext:
        parts.append("<p>Calls not entirely on mutual TLS:</p>")
        parts.append(
            _simple_table(
                "plaintext",
                ("source", "destination", "protocol", "traffic", "mTLS"),
                [
                    (
                        report.label(e.source),
                        report.label(e.destination),
                        e.stats.protocol.value,
                        traffic(e),
                        units.percent(e.stats.mtls),
                    )
                    for e in report.plaintext
                ],
            )
        )
    else:
        parts.append("<p>Every call is on mutual TLS.</p>")
    if report.without_proxy:
        parts.append("<p>Peers without a proxy:</p><ul>")
        parts += [
            f"<li><code>{xml_text(w.label)}</code>: {xml_text(why)}</li>"
            for w, why in report.without_proxy
        ]
        parts.append("</ul>")
    parts += _modes(report)
    parts.append('<h2 id="namespaces">By namespace</h2>')
    for i, (namespace, edges) in enumerate(by_namespace(report).items()):
        parts.append(f"<h3>{xml_text(namespace)}</h3>")
        parts.append(_edge_table(report, edges, f"namespace-{i}"))
    parts.append('<h2 id="routes">Routes</h2>')
    rows = route_rows(report)
    if rows:
        parts.append(_simple_table("routes-table", ROUTE_COLUMNS, rows))
    else:
        parts.append("<p>No routing rules were read.</p>")
    if breakers := breaker_rows(report):
        parts.append("<h3>Circuit breakers</h3>")
        parts.append(_simple_table("breakers-table", BREAKER_COLUMNS, breakers))
    parts += [f"<script>{SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"
