"""`--fail-on` gates for CI: `error_rate>1%`, `client_error_rate>5%`, `p99>500ms`,
`mtls<100%`, `rps<0.1`, `plaintext>0`, each
optionally scoped to the edges from or to some workloads (`shop/*:error_rate>1%`) or to
the calls into a namespace (`plaintext>0 ns=prod`). An edge a gate cannot judge (no
latency on a TCP edge) does not break it. `mtls-mode!=STRICT ns=prod` judges each
workload's effective mTLS mode (the security posture), not an edge. `fault-active` (and
`fault-expired`, a fault past the end meshtop set for it), optionally `ns=prod`, judges
the routes: a route that injects a fault breaks it (issue 21)."""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from meshtop import units
from meshtop.errors import UsageError
from meshtop.model import Edge, MeshSnapshot, Protocol
from meshtop.policy_view import InjectedFault, faults
from meshtop.posture import MtlsMode, Posture, WorkloadPosture, carries_traffic, plaintext_rate

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "=": operator.eq,
    "!=": operator.ne,
}
_LATENCY = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0}
SHARES = ("error_rate", "client_error_rate", "mtls")  # written as 1% or 0.01
LATENCIES = ("p50", "p95", "p99")  # written as 500ms, 1s or a plain number of ms
MODE = "mtls-mode"  # a workload's effective mTLS mode: STRICT, PERMISSIVE, DISABLE
FAULTS = ("fault-active", "fault-expired")  # judged on the routes, written alone
METRICS = (*SHARES, *LATENCIES, "rps", "plaintext", MODE, *FAULTS)
_GATE = re.compile(
    r"^(?:(?P<scope>[^:]+):)?(?P<metric>[a-z_0-9-]+)\s*(?P<op>>=|<=|==|!=|=|>|<)\s*"
    r"(?P<value>[^\s]+)(?:\s+ns=(?P<namespace>\S+))?$"
)


@dataclass(frozen=True, slots=True)
class Gate:
    text: str
    scope: str  # a glob on `namespace/workload` of either end; "" for every edge
    metric: str
    op: str
    value: float  # shares 0..1, latencies in ms, rates per second
    namespace: str = ""  # `ns=`: a glob on the namespace called into; "" for any
    mode: MtlsMode | None = None  # what `mtls-mode` is compared with

    @property
    def on_workloads(self) -> bool:
        """Whether the gate judges workloads' modes (the posture), not edges."""
        return self.metric == MODE

    @property
    def on_routes(self) -> bool:
        """Whether the gate judges the routes' injected faults, not edges."""
        return self.metric in FAULTS

    def applies(self, snapshot: MeshSnapshot, e: Edge) -> bool:
        if self.namespace:
            called = snapshot.nodes.get(e.destination)
            if called is None or not fnmatch.fnmatchcase(called.namespace, self.namespace):
                return False
        if not self.scope:
            return True
        return any(
            fnmatch.fnmatchcase(snapshot.nodes[n].label, self.scope)
            for n in e.key
            if n in snapshot.nodes
        )

    def judges(self, w: WorkloadPosture) -> bool:
        """Whether a mode gate is about this workload (its namespace, its scope)."""
        if self.namespace and not fnmatch.fnmatchcase(w.workload.namespace, self.namespace):
            return False
        return not self.scope or fnmatch.fnmatchcase(w.workload.label, self.scope)

    def measure(self, e: Edge) -> float | None:
        """The edge's figure for this gate; None when it has none to judge (latency, rate
        or errors of a TCP edge, mTLS of an edge without traffic, a latency that is not a
        number, as histogram_quantile gives for no requests), NaN when its request or
        error rate is not a number (an overflowing rate): a gate on that fails."""
        s = e.stats
        value: float | None
        if self.metric in LATENCIES:
            value = {"p50": s.p50_ms, "p95": s.p95_ms, "p99": s.p99_ms}[self.metric]
        elif self.metric == "mtls":
            value = s.mtls if carries_traffic(e) else None
        elif self.metric == "plaintext":  # plaintext requests (TCP connections) per second
            value = plaintext_rate(e) if carries_traffic(e) else None
        elif s.protocol is Protocol.TCP:
            value = None  # no requests to rate or fail, whatever the connections do
        else:
            value = {"rps": s.rps, "client_error_rate": s.client_error_rate}.get(
                self.metric, s.error_rate
            )
            if not (math.isfinite(s.rps) and math.isfinite(value)):
                return math.nan  # no share of an infinite rate can be trusted either
        if value is None or not math.isfinite(value):
            return None
        return round(value, 9) if self.metric in SHARES else value

    def show(self, value: float) -> str:
        if self.metric in SHARES:
            return units.percent(value)
        if self.metric in LATENCIES:
            return units.ms(value)
        return units.rps(value)


_FAULT_GATE = re.compile(r"^(?P<metric>fault-active|fault-expired)(?:\s+ns=(?P<namespace>\S+))?$")


def parse_gate(text: str) -> Gate:
    if found := _FAULT_GATE.match(text.strip()):
        return Gate(text.strip(), "", found["metric"], "", 0.0, found["namespace"] or "")
    match = _GATE.match(text.strip())
    if not match:
        raise UsageError(
            f"--fail-on {text!r}: write METRIC OP VALUE, e.g. error_rate>1%, "
            "client_error_rate>5%, p99>500ms, mtls<100%, rps<0.1, plaintext>0, "
            "mtls-mode!=STRICT, or fault-active, optionally SCOPE: before it "
            "(shop/*:error_rate>1%) or ns=NAMESPACE after it (plaintext>0 ns=prod)"
        )
    metric, op, raw = match["metric"], match["op"], match["value"]
    if metric in FAULTS:
        raise UsageError(f"--fail-on {text!r}: write {metric} alone, or {metric} ns=NAMESPACE")
    if metric not in METRICS:
        raise UsageError(f"--fail-on {text!r}: no metric {metric!r}; choose {', '.join(METRICS)}")
    scope, namespace = (match["scope"] or "").strip(), match["namespace"] or ""
    if metric == MODE:
        if op not in ("=", "==", "!="):
            raise UsageError(f"--fail-on {text!r}: compare mtls-mode with = or !=")
        modes = [m.value for m in MtlsMode if m is not MtlsMode.UNSET]
        if raw.upper() not in modes:
            raise UsageError(
                f"--fail-on {text!r}: {raw!r} is not a mode; choose {', '.join(modes)}"
            )
        return Gate(text.strip(), scope, metric, op, 0.0, namespace, MtlsMode(raw.upper()))
    if op == "!=":
        raise UsageError(f"--fail-on {text!r}: != compares mtls-mode only")
    try:
        if metric in SHARES:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
            if not 0 <= value <= 1:
                raise UsageError(
                    f"--fail-on {text!r}: {metric} is a share from 0 to 1, or 0% to 100%"
                )
        elif metric in LATENCIES:
            found = _LATENCY.match(raw)
            if not found:
                raise ValueError(raw)
            value = float(found[1]) * _MS[found[2] or "ms"]
        else:
            value = float(raw.removesuffix("rps"))
    except UsageError:
        raise
    except ValueError:
        raise UsageError(f"--fail-on {text!r}: {raw!r} is not a value for {metric}") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"--fail-on {text!r}: {raw!r} is not a value for {metric}")
    return Gate(text.strip(), scope, metric, op, value, namespace)


@dataclass(frozen=True, slots=True)
class Violation:
    gate: Gate
    edge: Edge
    value: float

    def describe(self, snapshot: MeshSnapshot) -> str:
        ends = " → ".join(
            snapshot.nodes[n].label if n in snapshot.nodes else n for n in self.edge.key
        )
        shown = self.gate.show(self.value) if math.isfinite(self.value) else "unknown"
        return f"{self.gate.text}: {ends} has {self.gate.metric} {shown}"


def check(snapshot: MeshSnapshot, gates: Sequence[Gate]) -> list[Violation]:
    """Every edge that breaks a gate, gate by gate, in the snapshot's edge order (the
    mode gates are `check_modes`')."""
    found = []
    for gate in gates:
        if gate.on_workloads or gate.on_routes:
            continue
        test = OPS[gate.op]
        for e in snapshot.edges:
            if not gate.applies(snapshot, e):
                continue
            value = gate.measure(e)
            if value is not None and (math.isnan(value) or test(value, gate.value)):
                found.append(Violation(gate, e, value))
    return found


@dataclass(frozen=True, slots=True)
class ModeViolation:
    gate: Gate
    workload: WorkloadPosture

    def describe(self) -> str:
        w = self.workload
        return f"{self.gate.text}: {w.workload.label} is {w.effective.text()} ({w.effective.why()})"


def check_modes(found: Posture, gates: Sequence[Gate]) -> list[ModeViolation]:
    """Every workload whose effective mode breaks a `mtls-mode` gate, gate by gate."""
    out = []
    for gate in gates:
        if not gate.on_workloads:
            continue
        out += [
            ModeViolation(gate, w)
            for w in found.workloads
            # the gate says what breaks it: `mtls-mode!=STRICT` fails where it is not
            if gate.judges(w) and (w.effective.mode is gate.mode) == (gate.op != "!=")
        ]
    return out


@dataclass(frozen=True, slots=True)
class FaultViolation:
    gate: Gate
    fault: InjectedFault
    now: datetime

    def describe(self) -> str:
        return f"{self.gate.text}: {self.fault.words(self.now)}"


def check_faults(snapshot: MeshSnapshot, gates: Sequence[Gate]) -> list[FaultViolation]:
    """Every injected fault that breaks a `fault-active` gate (any fault in the gate's
    namespaces) or a `fault-expired` one (a fault past its end), gate by gate; "now" is
    when the snapshot was taken."""
    now = snapshot.generated_at
    out = []
    for gate in gates:
        if not gate.on_routes:
            continue
        for f in faults(snapshot.routes):
            if gate.namespace and not fnmatch.fnmatchcase(f.route.namespace, gate.namespace):
                continue
            if gate.metric == "fault-active" or f.expired(now):
                out.append(FaultViolation(gate, f, now))
    return out
