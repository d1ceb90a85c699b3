"""`--format json`: the versioned document other tools rely on (README, "Export contract")."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from meshtop.export import security
from meshtop.model import (
    CircuitBreaker,
    Edge,
    EdgeStats,
    Health,
    Protocol,
    Route,
    RulePolicy,
    SourceHealth,
    WindowSummary,
)
from meshtop.report import Report
from meshtop.units import duration

SCHEMA = 1


def rfc3339(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def rounded(value: float | None, digits: int) -> float | None:
    """Rounded; None (JSON null) for a value that is not a finite number."""
    return None if value is None or not math.isfinite(value) else round(value, digits)


def rates_by(rates: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in sorted(rates.items()) if math.isfinite(v)}


def figures(s: EdgeStats | WindowSummary) -> dict[str, Any]:
    """Rate, errors, latency, mTLS and the rates by code, flag and gRPC status, as the
    export writes them: for an edge over the snapshot's window, or a window summed up."""
    return {
        "rps": rounded(s.rps, 4),
        "error_rate": rounded(s.error_rate, 6),
        "client_error_rate": rounded(s.client_error_rate, 6),
        "p50_ms": rounded(s.p50_ms, 3),
        "p95_ms": rounded(s.p95_ms, 3),
        "p99_ms": rounded(s.p99_ms, 3),
        "mtls": rounded(s.mtls, 4),
        "response_codes": rates_by(s.response_codes),
        "response_flags": rates_by(s.response_flags),
        "grpc_statuses": rates_by(s.grpc_statuses),
    }


def _source(h: SourceHealth) -> dict[str, Any]:
    return {
        "name": h.name,
        "state": h.state.value,
        "checked_at": rfc3339(h.checked_at),
        "fresh_at": rfc3339(h.fresh_at),
        "reason": h.reason or None,
    }


def _edge(e: Edge, health: Health) -> dict[str, Any]:
    s = e.stats
    doc: dict[str, Any] = {
        "source": e.source,
        "destination": e.destination,
        "service": e.service or None,
        "protocol": s.protocol.value,
        "protocols": [p.value for p in s.carried],
        **figures(s),
        "tcp": None,
        "health": health.value,
    }
    if s.protocol is Protocol.TCP:
        doc["tcp"] = {
            "request_bytes_per_s": rounded(s.tcp_request_bps, 2),
            "response_bytes_per_s": rounded(s.tcp_response_bps, 2),
            "connections_per_s": rounded(s.tcp_connections_per_s, 4),
        }
    return doc


def _policy(policy: RulePolicy) -> dict[str, Any]:
    """A rule's fault, timeout and retries (None: not set); durations in seconds."""
    f, retries = policy.fault, policy.retries
    return {
        "fault": None if f is None else {
            "abort_status": f.abort_status, "abort_percent": f.abort_percent,
            "delay_seconds": f.delay_s, "delay_percent": f.delay_percent,
        },
        "timeout_seconds": policy.timeout_s,
        "retries": None if retries is None else {
            "attempts": retries.attempts, "per_try_timeout_seconds": retries.per_try_timeout_s,
            "retry_on": retries.retry_on or None,
        },
    }  # fmt: skip


def _breaker(b: CircuitBreaker) -> dict[str, Any]:
    return {
        "cluster": b.cluster, "namespace": b.namespace, "destination_rule": b.name,
        "host": b.host, "subset": b.subset or None,
        "max_connections": b.max_connections, "max_pending_requests": b.max_pending,
        "max_requests": b.max_requests, "max_retries": b.max_retries,
        "consecutive_5xx_errors": b.consecutive_errors, "interval_seconds": b.interval_s,
        "base_ejection_seconds": b.base_ejection_s,
        "max_ejection_percent": b.max_ejection_percent,
    }  # fmt: skip


def _route(r: Route, now: datetime) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "cluster": r.cluster,
        "namespace": r.namespace,
        "name": r.name,
        "hosts": list(r.hosts),
        "resource_version": r.resource_version,
        "fault_expires": rfc3339(r.fault_expires) if r.fault_expires else None,
        "fault_expired": r.fault_expires is not None and now >= r.fault_expires,
        "rules": [
            {
                "name": rule.name or None,
                "matches": list(rule.matches),
                **_policy(rule.policy),
                "destinations": [
                    {"host": d.host, "subset": d.subset or None, "weight": d.weight, "port": d.port}
                    for d in rule.destinations
                ],
            }
            for rule in r.rules
        ],
    }


def document(report: Report) -> dict[str, Any]:
    snapshot, grades = report.snapshot, report.grades
    return {
        "schema": SCHEMA,
        "generated_at": rfc3339(snapshot.generated_at),
        "window": duration(snapshot.window_s),
        "window_seconds": snapshot.window_s,
        "scope": list(report.scope),
        "sources": {role: _source(h) for role, h in sorted(snapshot.sources.items())},
        "nodes": [
            {
                "id": node_id,
                "cluster": w.cluster,
                "namespace": w.namespace,
                "workload": w.name,
                "app": w.app or None,
                "version": w.version or None,
                "kind": w.kind.value,
                "mark": w.mark.value if w.mark else None,
                "health": grades.nodes[node_id].value,
            }
            for node_id, w in sorted(snapshot.nodes.items())
        ],
        "edges": [
            _edge(e, grades.edges[e.key]) for e in sorted(snapshot.edges, key=lambda e: e.key)
        ],
        "routes": [
            _route(r, snapshot.generated_at) for r in sorted(snapshot.routes, key=lambda r: r.id)
        ],
        "breakers": [
            _breaker(b)
            for b in sorted(snapshot.breakers, key=lambda b: (b.cluster, b.namespace, b.target))
        ],
        "security": {
            "plaintext_edges": [
                {"source": e.source, "destination": e.destination, "mtls": rounded(e.stats.mtls, 4)}
                for e in report.plaintext
            ],
            "without_proxy": [{"id": w.id, "reason": why} for w, why in report.without_proxy],
            **({"modes": modes} if (modes := security.document(report)) is not None else {}),
        },
    }


def render(report: Report) -> str:
    return one_item_per_line(document(report))


def one_item_per_line(doc: Mapping[str, Any]) -> str:
    """One top-level key per line and one item of a list (a node, an edge, a point) per
    line: readable, easy to grep, and several times faster than `indent=2` (which takes
    json's pure-Python path)."""
    lines = ["{"]
    for i, (key, value) in enumerate(doc.items()):
        comma = "," if i < len(doc) - 1 else ""
        if isinstance(value, list) and value:
            items = ",\n".join(f"    {json.dumps(item, allow_nan=False)}" for item in value)
            lines.append(f"  {json.dumps(key)}: [\n{items}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"
