"""The security posture's mTLS modes as every report format shows them, where the
configuration was read (`Report.security`): each namespace's and workload's effective
mode beside its traffic, what STRICT would break, the configuration that contradicts
itself. The JSON document and the rows of the tables are built here once; each format
only escapes them its own way (outside text: workload names, policy names)."""

from __future__ import annotations

from typing import Any

from meshtop import units
from meshtop.model import Workload
from meshtop.posture import Caller, NamespacePosture, Posture, WorkloadPosture
from meshtop.report import Report

NAMESPACE_COLUMNS = ("namespace", "mTLS mode", "set by", "traffic in", "STRICT would refuse")
WORKLOAD_COLUMNS = ("workload", "mTLS mode", "set by", "traffic in")


def _caller(c: Caller) -> dict[str, Any]:
    rps, refused = round(c.rps, 6), round(c.refused, 4)
    return {"id": c.node, "label": c.label, "plaintext_rps": rps, "refused": refused}


def _workload(w: WorkloadPosture) -> dict[str, Any]:
    return {
        "id": w.node,
        "mode": w.effective.mode.value,
        "ports": {str(p): m.value for p, m in sorted(w.effective.ports.items())},
        "set_by": w.effective.by or None,
        "mtls": None if w.mtls is None else round(w.mtls, 4),
        "plaintext_callers": [_caller(c) for c in w.callers],
        "conflicts": list(w.conflicts),
        "outside_kubernetes": w.entry or None,
    }


def document(report: Report) -> dict[str, Any] | None:
    """`security.modes` of the JSON report: None where the configuration was not read."""
    found = report.posture
    if found is None:
        return None
    breaks = report.strict_would_break
    return {
        "namespaces": [
            {
                "cluster": n.cluster,
                "namespace": n.namespace,
                "mode": n.effective.mode.value,
                "set_by": n.effective.by or None,
                "mtls": None if n.mtls is None else round(n.mtls, 4),
                "plaintext_callers": [_caller(c) for c in n.callers],
                "strict_would_refuse": [
                    _caller(c) for c in breaks.get((n.cluster, n.namespace), ())
                ],
                "workloads": [_workload(w) for w in n.workloads],
            }
            for n in found.namespaces
        ],
        "conflicts": list(found.conflicts),
        "notes": list(found.notes),
        "hosts": [
            {
                "service_entry": f"{h.entry.namespace}/{h.entry.name}",
                "hosts": list(h.entry.hosts),
                "location": h.entry.location,
                "rps": round(h.rps, 6),
                "plaintext_rps": round(h.plaintext_rps, 6),
            }
            for h in found.hosts
        ],
        "authorization_policies": list(found.policies),
        "authorizations": [
            {
                "source": v.source,
                "destination": v.destination,
                "decision": v.verdict.decision.value,
                "why": v.verdict.words,
                "policies": list(v.verdict.policies),
                "denied_rps": round(v.denied_rps, 6),
            }
            for v in found.authorizations
        ],
    }


def refused_text(callers: tuple[Caller, ...] | None) -> str:
    """`unknown 1.02rps, legacy 0.50rps`; `no observed caller`; `-` where the namespace
    is STRICT throughout already (None)."""
    if callers is None:
        return "-"
    if not callers:
        return "no observed plaintext caller"
    return ", ".join(f"{c.label} {units.rps(c.rps)}" for c in callers)


def namespace_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    found = report.posture
    if found is None:
        return []
    breaks = report.strict_would_break
    return [
        (
            _namespace(n, report),
            n.text().partition(", ")[0],
            n.effective.why(),
            n.text().partition(", ")[2],
            refused_text(breaks.get((n.cluster, n.namespace))),
        )
        for n in found.namespaces
    ]


def _namespace(n: NamespacePosture, report: Report) -> str:
    return f"{n.cluster}/{n.namespace}" if report.several_clusters else n.namespace


def workload_rows(report: Report) -> list[tuple[str, str, str, str]]:
    found = report.posture
    if found is None:
        return []
    return [
        (
            _label(w, report) + (f" ({w.entry})" if w.entry else ""),
            w.effective.text(),
            w.effective.why(),
            w.text().partition(", ")[2],
        )
        for w in found.workloads
    ]


def _label(w: WorkloadPosture, report: Report) -> str:
    wl: Workload = w.workload
    return f"{wl.cluster}/{wl.label}" if report.several_clusters else wl.label


def said(found: Posture) -> list[str]:
    """The conflicts, then the notes (policies Istio ignores, objects left out)."""
    return [f"conflict: {c}" for c in found.conflicts] + [f"note: {n}" for n in found.notes]


def authorizations(report: Report) -> list[str]:
    """Each observed call an AuthorizationPolicy decides, in words."""
    found = report.posture
    if found is None:
        return []
    return [v.text(_labels(report)) for v in found.authorizations]


def _labels(report: Report) -> dict[str, str]:
    nodes = {**(report.whole.nodes if report.whole else {}), **report.snapshot.nodes}
    return {n: report.label(n) for n in nodes}


def mode_of(report: Report, node: str) -> str:
    """The effective mode of a node, for a column; "" for one the posture has not."""
    found = report.posture
    w = found.workload(node) if found is not None else None
    return w.effective.text() if w is not None else ""


def namespace_title(report: Report, cluster: str, namespace: str) -> str:
    """A namespace's box in a drawing: its name, with its mTLS mode where the posture was
    read (`bookinfo · mTLS PERMISSIVE`)."""
    found = report.posture
    if found is None:
        return namespace
    mine = [n for n in found.namespace(namespace) if not cluster or n.cluster == cluster]
    return f"{namespace} · mTLS {mine[0].effective.text()}" if mine else namespace
