"""`--format markdown`: a report a person reads: the sources, a summary, the worst edges,
the security posture (with the mTLS modes, where the configuration was read), one table
per namespace, and the routes with their weights."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from meshtop import policy_view, units
from meshtop.export import security
from meshtop.health import worst
from meshtop.model import Edge, Protocol
from meshtop.report import Report
from meshtop.sanitize import markdown_code, markdown_text

WORST_SHOWN = 10


def cell(text: str) -> str:
    """Text that may come from outside, inline: shown on one line, with what Markdown and
    inline HTML would read escaped (`sanitize.markdown_text`)."""
    return markdown_text(text)


def traffic(e: Edge) -> str:
    s = e.stats
    if s.protocol is Protocol.TCP:
        out, back = units.bytes_per_s(s.tcp_request_bps), units.bytes_per_s(s.tcp_response_bps)
        return f"{s.tcp_connections_per_s:.2f} conn/s, {out} out, {back} back"
    return units.rps(s.rps)


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table of outside text."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows),
    ]


def modes(report: Report) -> list[str]:
    """The mTLS modes beside the traffic, where the configuration was read."""
    found = report.posture
    if found is None:
        return []
    lines = ["", "### mTLS modes", ""]
    lines += table(security.NAMESPACE_COLUMNS, security.namespace_rows(report))
    lines += ["", *table(security.WORKLOAD_COLUMNS, security.workload_rows(report))]
    if found.conflicts or found.notes:
        lines += ["", *(f"- {cell(line)}" for line in security.said(found))]
    if found.policies:
        lines += ["", "Authorization policies:", "", *(f"- {cell(p)}" for p in found.policies)]
    calls = security.authorizations(report)
    if calls:
        lines += ["", "Observed calls they decide:", "", *(f"- {cell(c)}" for c in calls)]
    return lines


def edge_cells(report: Report, e: Edge) -> list[str]:
    """One edge as a person reads it: the columns of every edge table of a report."""
    s = e.stats
    tcp = s.protocol is Protocol.TCP
    return [
        report.label(e.source),
        report.label(e.destination),
        "+".join(p.value for p in s.carried),
        traffic(e),
        "-" if tcp else units.percent(s.error_rate),
        "-" if tcp else units.percent(s.client_error_rate),
        units.ms(s.p50_ms),
        units.ms(s.p95_ms),
        units.ms(s.p99_ms),
        units.percent(s.mtls),
        report.grades.edges[e.key].value,
    ]


EDGE_COLUMNS = ("source", "destination", "protocol", "traffic", "errors", "4xx", "p50", "p95",
                "p99", "mTLS", "health")  # fmt: skip


def _edge_table(report: Report, edges: Sequence[Edge]) -> list[str]:
    lines = [
        "| " + " | ".join(EDGE_COLUMNS) + " |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += ["| " + " | ".join(cell(c) for c in edge_cells(report, e)) + " |" for e in edges]
    return lines


def by_namespace(report: Report) -> dict[str, list[Edge]]:
    """Each namespace's edges (the calls its workloads answer, or make to outside the
    mesh), worst first."""
    out: dict[str, list[Edge]] = defaultdict(list)
    nodes = report.snapshot.nodes
    for e in report.edges:
        destination = nodes[e.destination]
        home = destination.namespace if destination.kind.value == "workload" else ""
        out[home or nodes[e.source].namespace].append(e)
    return dict(sorted(out.items()))


def route_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """(route, hosts, rule, destinations, policy) for each rule of each route, in order:
    the policy is the rule's fault (with the end meshtop set, or EXPIRED), timeout and
    retries, in words."""
    rows = []
    now = report.snapshot.generated_at
    for r in sorted(report.snapshot.routes, key=lambda r: r.id):
        faults = {f.rule: f for f in policy_view.faults([r])}
        for i, rule in enumerate(r.rules):
            dests = ", ".join(
                f"{d.host}{' ' + d.subset if d.subset else ''} {d.weight}"
                + ("%" if r.kind == "VirtualService" else "")
                for d in rule.destinations
            )
            policy = [w for w in rule.policy.words() if not w.startswith("fault: ")]
            if i in faults:
                f = faults[i]
                end = ""
                if f.expires is not None:
                    ends = f.expires.isoformat(timespec="seconds")
                    end = " EXPIRED" if f.expired(now) else f" until {ends}"
                policy.insert(0, f"fault: {f.fault.words()}{end}")
            rows.append(
                (
                    f"{r.kind} {r.namespace}/{r.name}" if i == 0 else "",
                    ", ".join(r.hosts) if i == 0 else "",
                    " and ".join(rule.matches) if rule.matches else "default",
                    dests,
                    "; ".join(policy),
                )
            )
    return rows


ROUTE_COLUMNS = ("route", "hosts", "rule", "destinations", "policy")
BREAKER_COLUMNS = ("destination rule", "host", "circuit breaker")


def breaker_rows(report: Report) -> list[tuple[str, str, str]]:
    """(DestinationRule, host or host/subset, its pool and outlier detection in words)."""
    return [
        (f"{b.namespace}/{b.name}", b.target, "; ".join(b.words()))
        for b in sorted(report.snapshot.breakers, key=lambda b: (b.namespace, b.name, b.target))
    ]


def route_lines(report: Report) -> list[str]:
    rows = route_rows(report)
    if not rows:
        return ["No routing rules were read."]
    lines = ["| " + " | ".join(ROUTE_COLUMNS) + " |", "|---" * len(ROUTE_COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    breakers = breaker_rows(report)
    if breakers:
        lines += ["", "Circuit breakers:", ""]
        lines += ["| " + " | ".join(BREAKER_COLUMNS) + " |", "|---" * len(BREAKER_COLUMNS) + "|"]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in breakers]
    return lines


def render(report: Report) -> str:
    snapshot = report.snapshot
    totals = report.totals
    when = snapshot.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    scope = f" Scope: {cell(', '.join(report.scope))}." if report.scope else ""
    lines = [
        "# meshtop report",
        "",
        f"Generated {when} over a {units.duration(snapshot.window_s)} window.{scope} "
        f"Overall: **{worst(report.grades.edges.values()).value}**.",
        "",
        "| source | backend | state | detail |",
        "|---|---|---|---|",
    ]
    for role, h in sorted(snapshot.sources.items()):
        lines.append(f"| {role} | {cell(h.name)} | {h.state.value} | {cell(h.reason) or '-'} |")
    lines += [
        "",
        "## Summary",
        "",
        f"- {len(snapshot.nodes)} nodes, {len(snapshot.edges)} edges, "
        f"{units.rps(totals['rps'])} of HTTP and gRPC requests",
        f"- edges failing: {totals['failing']:.0f}, degraded: {totals['degraded']:.0f}, "
        f"healthy: {totals['healthy']:.0f}, idle: {totals['idle']:.0f}",
        f"- edges not fully on mTLS: {len(report.plaintext)}; "
        f"peers without a proxy: {len(report.without_proxy)}",
        "",
        f"## Worst edges ({min(WORST_SHOWN, len(report.edges))} of {len(report.edges)})",
        "",
        *_edge_table(report, report.edges[:WORST_SHOWN]),
        "",
        "## Security posture",
        "",
    ]
    if report.plaintext:
        lines += ["Calls not entirely on mutual TLS:", ""]
        lines += ["| source | destination | protocol | traffic | mTLS |", "|---|---|---|---:|---:|"]
        lines += [
            f"| {cell(report.label(e.source))} | {cell(report.label(e.destination))} "
            f"| {e.stats.protocol.value} | {traffic(e)} | {units.percent(e.stats.mtls)} |"
            for e in report.plaintext
        ]
    else:
        lines.append("Every call is on mutual TLS.")
    if report.without_proxy:
        lines += ["", "Peers without a proxy:", ""]
        lines += [f"- {markdown_code(w.label)}: {cell(why)}" for w, why in report.without_proxy]
    lines += modes(report)
    lines += ["", "## By namespace"]
    for namespace, edges in by_namespace(report).items():
        lines += ["", f"### {cell(namespace)}", "", *_edge_table(report, edges)]
    lines += ["", "## Routes", "", *route_lines(report)]
    return "\n".join(lines) + "\n"
