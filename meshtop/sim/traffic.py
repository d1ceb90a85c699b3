"""The simulated mesh's traffic at a moment: requests flow from the roots down the call
graph, split by the current route weights, so a weight change moves rates, errors and
latencies at once. Latency on an edge is log-normal around the callee's own time plus
what it waits for downstream."""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from meshtop.model import EdgeStats, NodeKind, Protocol, Route
from meshtop.sim.topology import Guard, RouteKey, SimCall, SimMesh, SimWorkload
from meshtop.sources.routing import default_rule

# z-scores of the standard normal at the quantiles meshtop reports.
Z = {0.5: 0.0, 0.95: 1.6448536, 0.99: 2.3263479}
QUANTILES = tuple(Z)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One kind of answer on an edge, as Istio labels it, and its rate."""

    code: str  # HTTP response code
    flags: str  # Envoy response flags, "-" for none
    grpc_status: str  # "" for plain HTTP
    rps: float
    # False: the client's proxy never got the request to the server (a connection
    # failure), so only the client's proxy counts it.
    arrived: bool = True

    @property
    def is_error(self) -> bool:
        if self.grpc_status:
            return self.grpc_status != "0"
        return self.code.startswith("5") or self.code == "0"


@dataclass(frozen=True, slots=True)
class SimEdge:
    source: SimWorkload
    destination: SimWorkload
    service_namespace: str
    service_name: str
    service_fqdn: str
    protocol: Protocol
    rate: float  # requests/s, or TCP connections/s
    outcomes: tuple[Outcome, ...]
    median_ms: float
    sigma: float
    request_bps: float = 0.0
    response_bps: float = 0.0
    plaintext: bool = False  # sent in plain text by the client's proxy (tls DISABLE)

    @property
    def mtls(self) -> bool:
        return self.source.sidecar and self.destination.sidecar and not self.plaintext

    @property
    def reporters(self) -> tuple[str, ...]:
        """Which proxies report this edge: both for sidecar to sidecar, only the client's
        for a destination without a proxy, only the server's for an unmeshed client."""
        out = []
        if self.source.sidecar:
            out.append("source")
        if self.destination.sidecar:
            out.append("destination")
        return tuple(out)

    def quantile_ms(self, q: float) -> float:
        return self.median_ms * math.exp(Z[q] * self.sigma)

    def cdf(self, ms: float) -> float:
        """Share of requests answered within `ms` milliseconds."""
        if ms <= 0:
            return 0.0
        z = (math.log(ms) - math.log(self.median_ms)) / self.sigma
        return 0.5 * math.erfc(-z / math.sqrt(2))

    def stats(self) -> EdgeStats:
        if self.protocol is Protocol.TCP:
            return EdgeStats(
                protocol=Protocol.TCP,
                mtls=1.0 if self.mtls else 0.0,
                tcp_request_bps=self.request_bps,
                tcp_response_bps=self.response_bps,
                tcp_connections_per_s=self.rate,
            )
        codes: dict[str, float] = defaultdict(float)
        flags: dict[str, float] = defaultdict(float)
        grpc: dict[str, float] = defaultdict(float)
        errors = 0.0
        for o in self.outcomes:
            codes[o.code] += o.rps
            if o.flags != "-":
                flags[o.flags] += o.rps
            if o.grpc_status:
                grpc[o.grpc_status] += o.rps
            if o.is_error:
                errors += o.rps
        return EdgeStats(
            protocol=self.protocol,
            rps=self.rate,
            error_rate=errors / self.rate if self.rate else 0.0,
            p50_ms=self.quantile_ms(0.5),
            p95_ms=self.quantile_ms(0.95),
            p99_ms=self.quantile_ms(0.99),
            mtls=1.0 if self.mtls else 0.0,
            response_codes=dict(codes),
            response_flags=dict(flags),
            grpc_statuses=dict(grpc),
        )


def mixture_quantile(edges: Sequence[tuple[SimEdge, float]], q: float) -> float | None:
    """The `q` quantile of the latency of several edges' requests together, each edge
    weighted by its rate: where the mixed distribution's share of answers reaches `q`."""
    total = sum(w for _, w in edges)
    if not edges or total <= 0:
        return None
    if len(edges) == 1:
        return edges[0][0].quantile_ms(q)
    lo = min(e.quantile_ms(q) for e, _ in edges)
    hi = max(e.quantile_ms(q) for e, _ in edges)
    for _ in range(40):  # bisection in log space: 40 halvings are well under 0.1%
        mid = math.sqrt(lo * hi)
        if sum(w * e.cdf(mid) for e, w in edges) / total < q:
            lo = mid
        else:
            hi = mid
    return math.sqrt(lo * hi)


def wave(key: str, t: float, amplitude: float) -> float:
    """A factor near 1 that drifts slowly and wobbles a little, the same for the same
    key and time: live-looking numbers that tests can still pin down."""
    h = zlib.crc32(key.encode())
    slow = math.sin(2 * math.pi * t / 240.0 + (h % 6283) / 1000.0)
    noise = (zlib.crc32(f"{h}:{int(t // 10)}".encode()) / 0xFFFFFFFF - 0.5) * 2.0
    return 1.0 + amplitude * (0.7 * slow + 0.3 * noise)


def split(
    mesh: SimMesh, call: SimCall, routes: Mapping[RouteKey, Route] | None = None
) -> list[tuple[str, float]]:
    """Where a call's traffic goes: (workload id, share), by the default rule of the
    route in the caller's cluster when the service has one, else evenly over the
    service's workloads. Locality first, as Istio's failover does: of the workloads
    that may take a share, those in the caller's cluster do, and only when it has none
    do the other clusters'. A share no workload can take (no workloads, a subset
    matching no pod, weights of 0) goes to the service itself, where the client's proxy
    answers 503 "no healthy upstream"."""
    home = mesh.home(call.caller)

    def near(pool: list[str]) -> list[str]:
        local = [t for t in pool if mesh.node(t).workload.cluster == home]
        return local or pool

    targets = near(mesh.services.get((call.namespace, call.service), []))
    route = (mesh.routes if routes is None else routes).get((home, call.namespace, call.service))
    rule = (default_rule(route) or (route.rules[0] if route.rules else None)) if route else None
    unserved = mesh.unserved(home, call.namespace, call.service).id
    if rule is None:
        return [(t, 1.0 / len(targets)) for t in targets] or [(unserved, 1.0)]
    total = sum(d.weight for d in rule.destinations)
    if total <= 0:
        return [(unserved, 1.0)]
    shares: list[tuple[str, float]] = []
    lost = 0.0
    for d in rule.destinations:
        labels = mesh.subsets.get((call.namespace, d.host, d.subset), {})
        pool = mesh.services.get((call.namespace, d.host), [])
        matched = near([t for t in pool if _has_labels(mesh.node(t), labels)])
        share = d.weight / total
        if matched:
            shares.extend((t, share / len(matched)) for t in matched)
        else:
            lost += share
    if lost > 0:
        shares.append((unserved, lost))
    return shares


Split = list[tuple[str, float]]
Splits = dict[SimCall, tuple[tuple[object, ...], Split]]


def kept_split(
    mesh: SimMesh, call: SimCall, routes: Mapping[RouteKey, Route] | None, kept: Splits
) -> Split:
    """`split`, worked out again only when what it reads is not the same object as when
    it was kept: the service's workloads, the route, each destination's subset and
    workloads (a route written anew, a service scaled to zero are new objects)."""
    home = mesh.home(call.caller)
    route = (mesh.routes if routes is None else routes).get((home, call.namespace, call.service))
    reads: tuple[object, ...] = (mesh.services.get((call.namespace, call.service)), route)
    if route is not None:
        reads += tuple(
            x
            for rule in route.rules
            for d in rule.destinations
            for x in (
                mesh.subsets.get((call.namespace, d.host, d.subset)),
                mesh.services.get((call.namespace, d.host)),
            )
        )
    found = kept.get(call)
    if (
        found is not None
        and len(found[0]) == len(reads)
        and all(a is b for a, b in zip(found[0], reads, strict=True))
    ):
        return found[1]
    shares = split(mesh, call, routes)
    kept[call] = (reads, shares)
    return shares


def _has_labels(w: SimWorkload, labels: dict[str, str]) -> bool:
    known = {"version": w.workload.version, "app": w.workload.app}
    return all(known.get(k) == v for k, v in labels.items())


def _outcomes(
    call: SimCall, dest: SimWorkload, rate: float, key: str, t: float
) -> tuple[Outcome, ...]:
    if dest.workload.kind is NodeKind.SERVICE:  # nothing behind the service
        return (
            (Outcome("200", "UH", "14", rate),)
            if call.protocol is Protocol.GRPC
            else (Outcome("503", "UH", "", rate),)
        )
    b = dest.behaviour
    err = min(1.0, b.error_rate * wave(key + "/err", t, 0.3)) if b.error_rate else 0.0
    if call.protocol is Protocol.GRPC:
        return tuple(
            o
            for o in (
                Outcome("200", "-", "0", rate * (1 - err)),
                Outcome("200", "-", "14", rate * err * 0.7),  # UNAVAILABLE
                Outcome("200", "-", "2", rate * err * 0.3),  # UNKNOWN
            )
            if o.rps > 0
        )
    rejected = b.client_error_rate
    return tuple(
        o
        for o in (
            Outcome("200", "-", "", rate * (1 - err - rejected)),
            Outcome("500", "-", "", rate * err * 0.6),
            Outcome("503", "URX", "", rate * err * 0.25),
            Outcome("503", "UF", "", rate * err * 0.15, arrived=False),
            Outcome("404", "-", "", rate * rejected),
        )
        if o.rps > 0
    )


def _answers(
    call: SimCall, dest: SimWorkload, rate: float, key: str, t: float, guard: Guard | None
) -> tuple[Outcome, ...]:
    """How a call is answered; one the security configuration refuses (plain text into
    STRICT, an AuthorizationPolicy's denial), every request as it says."""
    refusal = guard.refusal if guard is not None else None
    if refusal is not None:
        return (Outcome(refusal.code, refusal.flags, "", rate, arrived=refusal.arrived),)
    return _outcomes(call, dest, rate, key, t)


Keep = Callable[[str, str], bool]


def flows(
    mesh: SimMesh,
    t: float,
    routes: Mapping[RouteKey, Route] | None = None,
    *,
    keep: Keep | None = None,
    splits: dict[SimCall, list[tuple[str, float]]] | None = None,
    kept: Splits | None = None,
) -> list[SimEdge]:
    """Every edge carrying traffic at time `t` (seconds since the epoch), routed by
    `routes` (the mesh's current routes when None). `keep(source, destination)` picks
    the edges wanted (all are still walked: rates come from upstream, latencies from
    downstream); `splits` keeps `split`'s answers between calls with the same routes;
    `kept` keeps them for as long as what they read is the same (`kept_split`)."""
    inbound: dict[str, float] = defaultdict(float)
    for root, rps in mesh.roots.items():
        inbound[root] += rps * wave(root, t, 0.08)
    by_caller = mesh.calls_by_caller
    order = mesh.call_order
    routed: list[tuple[SimCall, str, float]] = []
    for wid in order:
        served = inbound.get(wid, 0.0)
        if served <= 0:
            continue
        for call in by_caller[wid]:
            rate = served * call.per_request
            shares = splits.get(call) if splits is not None else None
            if shares is None:
                if kept is not None:
                    shares = kept_split(mesh, call, routes, kept)
                else:
                    shares = split(mesh, call, routes)
                if splits is not None:
                    splits[call] = shares
            for target, share in shares:
                r = rate * share * wave(f"{wid}>{target}", t, 0.05)
                if r > 0:
                    inbound[target] += r
                    routed.append((call, target, r))

    return _edges(mesh, routed, inbound, t, keep)


def _edges(
    mesh: SimMesh,
    routed: list[tuple[SimCall, str, float]],
    inbound: dict[str, float],
    t: float,
    keep: Keep | None = None,
) -> list[SimEdge]:
    # A workload's answer takes its own time plus what it waits for downstream: walk
    # callees before callers, adding each callee's median, weighted by calls per request.
    by_caller: dict[str, list[tuple[SimCall, str, float]]] = defaultdict(list)
    for item in routed:
        by_caller[item[0].caller].append(item)
    workloads = mesh.workloads
    node = mesh.node
    tcp = Protocol.TCP
    median: dict[str, float] = {}
    for wid in reversed(mesh.call_order):
        total = workloads[wid].behaviour.median_ms
        served = inbound.get(wid, 0.0)
        for call, target, r in by_caller.get(wid, ()):
            if call.protocol is not tcp and served > 0:
                below = median.get(target)
                if below is None:
                    below = node(target).behaviour.median_ms
                total += r / served * below
        median[wid] = total

    edges: list[SimEdge] = []
    add = edges.append
    fqdn = mesh.service_fqdn
    for call, target, r in routed:
        if keep is not None and not keep(call.caller, target):
            continue
        source = node(call.caller)
        dest = node(target)
        behaviour = dest.behaviour
        below = median.get(target)
        guard = mesh.guard(source, dest, t) if mesh.guard is not None else None
        add(
            SimEdge(
                source,
                dest,
                call.namespace,
                call.service,
                fqdn(call.namespace, call.service),
                call.protocol,
                r,
                ()
                if call.protocol is tcp
                else _answers(call, dest, r, f"{call.caller}>{target}", t, guard),
                behaviour.median_ms if below is None else below,
                behaviour.sigma,
                r * call.request_bytes,
                r * call.response_bytes,
                guard is not None and guard.plaintext,
            )
        )
    return edges
