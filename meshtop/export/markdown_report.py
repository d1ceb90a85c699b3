"""`--format markdown`: a report a person reads, worst edges first."""

from __future__ import annotations

from meshtop import units
from meshtop.health import DEFAULT_THRESHOLDS, Thresholds, grade, worst
from meshtop.model import Edge, Health, MeshSnapshot, Protocol, Workload

_RANK = {Health.FAILING: 0, Health.DEGRADED: 1, Health.HEALTHY: 2, Health.IDLE: 3}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _label(snapshot: MeshSnapshot, node_id: str) -> str:
    w = snapshot.nodes.get(node_id)
    return w.label if isinstance(w, Workload) else node_id


def _traffic(e: Edge) -> str:
    s = e.stats
    if s.protocol is Protocol.TCP:
        out, back = units.bytes_per_s(s.tcp_request_bps), units.bytes_per_s(s.tcp_response_bps)
        return f"{s.tcp_connections_per_s:.2f} conn/s, {out} out, {back} back"
    return units.rps(s.rps)


def render(snapshot: MeshSnapshot, t: Thresholds = DEFAULT_THRESHOLDS) -> str:
    healths = grade(snapshot, t).edges
    http = [e for e in snapshot.edges if e.stats.protocol is not Protocol.TCP]
    total = sum(e.stats.rps for e in http)
    counts = {h: sum(1 for v in healths.values() if v is h) for h in Health}
    plaintext = [e for e in snapshot.edges if e.stats.mtls < 1.0]
    when = snapshot.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        "# meshtop report",
        "",
        f"Generated {when} over a {units.duration(snapshot.window_s)} window. "
        f"Overall: **{worst(healths.values()).value}**.",
        "",
        "| source | backend | state | detail |",
        "|---|---|---|---|",
    ]
    for role, h in sorted(snapshot.sources.items()):
        lines.append(f"| {role} | {_cell(h.name)} | {h.state.value} | {_cell(h.reason) or '-'} |")
    lines += [
        "",
        "## Summary",
        "",
        f"- {len(snapshot.nodes)} nodes, {len(snapshot.edges)} edges, "
        f"{units.rps(total)} of HTTP and gRPC requests",
        f"- edges failing: {counts[Health.FAILING]}, degraded: {counts[Health.DEGRADED]}, "
        f"healthy: {counts[Health.HEALTHY]}, idle: {counts[Health.IDLE]}",
        f"- edges not fully on mTLS: {len(plaintext)}",
        "",
        "## Edges, worst first",
        "",
        "| source | destination | protocol | traffic | errors | p50 | p95 | p99 | mTLS | health |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    ordered = sorted(
        snapshot.edges, key=lambda e: (_RANK[healths[e.key]], -e.stats.error_rate, -e.stats.rps)
    )
    for e in ordered:
        s = e.stats
        tcp = s.protocol is Protocol.TCP
        lines.append(
            f"| {_cell(_label(snapshot, e.source))} | {_cell(_label(snapshot, e.destination))} "
            f"| {s.protocol.value} | {_traffic(e)} | {'-' if tcp else units.percent(s.error_rate)} "
            f"| {units.ms(s.p50_ms)} | {units.ms(s.p95_ms)} | {units.ms(s.p99_ms)} "
            f"| {units.percent(s.mtls)} | {healths[e.key].value} |"
        )
    lines += ["", "## Routes", ""]
    if not snapshot.routes:
        lines.append("No routing rules were read.")
    else:
        lines += ["| route | hosts | rule | destinations |", "|---|---|---|---|"]
        for r in sorted(snapshot.routes, key=lambda r: r.id):
            for i, rule in enumerate(r.rules):
                where = " or ".join(rule.matches) if rule.matches else "default"
                dests = ", ".join(
                    f"{d.host}{' ' + d.subset if d.subset else ''} {d.weight}"
                    + ("%" if r.kind == "VirtualService" else "")
                    for d in rule.destinations
                )
                name = f"{r.kind} {r.namespace}/{r.name}" if i == 0 else ""
                hosts = ", ".join(r.hosts) if i == 0 else ""
                lines.append(
                    f"| {_cell(name)} | {_cell(hosts)} | {_cell(where)} | {_cell(dests)} |"
                )
    return "\n".join(lines) + "\n"
