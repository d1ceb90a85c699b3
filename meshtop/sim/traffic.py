"""The simulated mesh's traffic at a moment: requests flow from the roots down the call
graph, split by the current route weights, so a weight change moves rates, errors and
latencies at once. Latency on an edge is log-normal around the callee's own time plus
what it waits for downstream. Where a route or a DestinationRule sets a policy (a rule
for some callers, a fault, a timeout, retries, a circuit breaker), the caller's proxy
applies it (`sim/policies.py`): answers of its own, on the edge to the service (`FI`,
`UO`, `UH`, `NR`), and the callee's answers and latency shaped (`DI`, `UT`, `URX`).
Over 400 lines: the walk and the policies it applies on the way read the same state."""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from meshtop.model import (
    CircuitBreaker,
    EdgeStats,
    NodeKind,
    Protocol,
    Route,
    RouteRule,
    RulePolicy,
)
from meshtop.sim.objects import BreakerKey
from meshtop.sim.policies import (
    DEFAULT_RETRY,
    Attempts,
    Retry,
    capacity,
    chosen_rule,
    ejected,
    grpc_status,
    is_shaping,
    merged,
    most_ejected,
    overflow,
    retry_of,
)
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
    # a fault's delay (of a share of the requests), a timeout: the latency's shape
    delay_ms: float = 0.0
    delay_share: float = 0.0
    timeout_ms: float | None = None

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

    @property
    def shaped(self) -> bool:
        """Whether a delay or a timeout bends its latency away from the log-normal."""
        return self.delay_share > 0 or self.timeout_ms is not None

    def quantile_ms(self, q: float) -> float:
        if not self.shaped:
            return self.median_ms * math.exp(Z[q] * self.sigma)
        lo, hi = (
            1e-3,
            self.timeout_ms or (self.delay_ms + self.median_ms * math.exp(8 * self.sigma)),
        )
        if self.cdf(hi) < q:
            return hi
        for _ in range(60):  # bisection in log space
            mid = math.sqrt(lo * hi)
            if self.cdf(mid) < q:
                lo = mid
            else:
                hi = mid
        return math.sqrt(lo * hi)

    def _lognormal_cdf(self, ms: float) -> float:
        if ms <= 0:
            return 0.0
        z = (math.log(ms) - math.log(self.median_ms)) / self.sigma
        return 0.5 * math.erfc(-z / math.sqrt(2))

    def cdf(self, ms: float) -> float:
        """Share of requests answered within `ms` milliseconds."""
        if not self.shaped:
            return self._lognormal_cdf(ms)
        if self.timeout_ms is not None and ms >= self.timeout_ms:
            return 1.0
        d = self.delay_share
        return (1 - d) * self._lognormal_cdf(ms) + d * self._lognormal_cdf(ms - self.delay_ms)

    def mean_ms(self) -> float:
        """The mean latency (a histogram's sum over its count)."""
        if not self.shaped:
            return self.median_ms * math.exp(self.sigma**2 / 2)
        m, s = math.log(self.median_ms), self.sigma
        mean = math.exp(m + s * s / 2)

        def capped(cap: float) -> float:  # E[min(X, cap)] of the log-normal X
            if cap <= 0:
                return 0.0
            z = (math.log(cap) - m) / s
            below = 0.5 * math.erfc(-(z - s) / math.sqrt(2))
            return mean * below + cap * (1 - 0.5 * math.erfc(-z / math.sqrt(2)))

        t = self.timeout_ms
        plain = mean if t is None else capped(t)
        if t is None:
            late = self.delay_ms + mean
        else:
            late = t if t <= self.delay_ms else self.delay_ms + capped(t - self.delay_ms)
        return (1 - self.delay_share) * plain + self.delay_share * late

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
    route = (mesh.routes if routes is None else routes).get((home, call.namespace, call.service))
    rule = (default_rule(route) or (route.rules[0] if route.rules else None)) if route else None
    unserved = mesh.unserved(home, call.namespace, call.service).id
    groups, lost = _groups(mesh, call, rule, home)
    shares = [(t, share / len(targets)) for _, _, share, targets in groups for t in targets]
    if lost > 0:
        shares.append((unserved, lost))
    return shares


Group = tuple[str, str, float, list[str]]  # subset, host, share, the workloads taking it


def _groups(
    mesh: SimMesh, call: SimCall, rule: RouteRule | None, home: str
) -> tuple[list[Group], float]:
    """Each destination of a rule (none: the service, evenly): its share and the
    workloads that take it (those of the caller's cluster first); and the share no
    workload can take."""

    def near(pool: list[str]) -> list[str]:
        local = [t for t in pool if mesh.node(t).workload.cluster == home]
        return local or pool

    if rule is None:
        targets = near(mesh.services.get((call.namespace, call.service), []))
        return ([("", call.service, 1.0, targets)], 0.0) if targets else ([], 1.0)
    total = sum(d.weight for d in rule.destinations)
    if total <= 0:
        return [], 1.0
    groups: list[Group] = []
    lost = 0.0
    for d in rule.destinations:
        labels = mesh.subsets.get((call.namespace, d.host, d.subset), {})
        pool = mesh.services.get((call.namespace, d.host), [])
        matched = near([t for t in pool if _has_labels(mesh.node(t), labels)])
        share = d.weight / total
        if matched:
            groups.append((d.subset, d.host, share, matched))
        else:
            lost += share
    return groups, lost


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
    err = _err(dest, key, t)
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


def _err(dest: SimWorkload, key: str, t: float) -> float:
    """The share of requests the callee fails at `t`, as a caller sees them (Istio's
    default retries done)."""
    b = dest.behaviour
    return min(1.0, b.error_rate * wave(key + "/err", t, 0.3)) if b.error_rate else 0.0


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
Breakers = Mapping[BreakerKey, tuple[CircuitBreaker, ...]]


@dataclass(frozen=True, slots=True)
class Shaping:
    """How the caller's proxy answers an edge's requests beyond the callee's own
    answers: all of them itself (`local`, on the edge to the service: an abort, an
    overflow, no healthy or no matching upstream), or the callee's answers under a retry
    policy other than the default, a fault's delay and a timeout."""

    local: tuple[Outcome, ...] = ()
    retry: Retry = DEFAULT_RETRY
    attempts: Attempts | None = None  # None: the default retry policy
    timeout_ms: float | None = None
    delay_ms: float = 0.0
    delay_share: float = 0.0


Routed = tuple[SimCall, str, float, Shaping | None]  # a call, its target, requests/s, how


def policies_in_force(routes: Mapping[RouteKey, Route], breakers: Breakers) -> bool:
    """Whether any route picks its callers or shapes its answers, or any DestinationRule
    sets a circuit breaker: else every call is split as it is, at no cost."""
    if breakers:
        return True
    seen: set[int] = set()
    for route in routes.values():
        if id(route) in seen:
            continue
        seen.add(id(route))
        if any(r.matches or is_shaping(r.policy) for r in route.rules):
            return True
    return False


def _labels(w: SimWorkload) -> dict[str, str]:
    return {"app": w.workload.app, "version": w.workload.version}


Applied = tuple[RouteRule | None, RulePolicy | None, dict[str, tuple[CircuitBreaker, ...]]]


def applied(
    mesh: SimMesh, call: SimCall, route: Route | None, breakers: Breakers
) -> Applied | None:
    """The rule that takes a call's requests (by the caller's labels), its policy and the
    destinations' circuit breakers, when the caller's proxy applies any of it; None when
    nothing touches the call (split as it is). Its routes and breakers alone decide it,
    not the moment."""
    source = mesh.node(call.caller)
    if not source.sidecar or call.protocol is Protocol.TCP:
        return None  # no proxy of its own: nothing applies a policy
    ns, home = call.namespace, mesh.home(call.caller)
    rule: RouteRule | None = None
    selective = False
    if route is not None and route.rules:
        selective = any(r.matches for r in route.rules)
        rule = (
            chosen_rule(route, mesh.rules_of(route), _labels(source))
            if selective
            else default_rule(route) or route.rules[0]
        )
    policy = rule.policy if rule is not None else None
    hosts = {d.host for d in rule.destinations} if rule is not None else {call.service}
    held = {h: breakers.get((home, ns, h), ()) for h in hosts}
    if not selective and not (policy is not None and is_shaping(policy)) and not any(held.values()):
        return None
    return rule, policy, held


def policed_legs(
    mesh: SimMesh,
    call: SimCall,
    rate: float,
    t: float,
    route: Route | None,
    breakers: Breakers,
    latency: Callable[[str], float],
) -> tuple[list[Routed], dict[str, float]] | None:
    """A call's requests through the caller's proxy, under the rule that takes them
    (by the caller's labels), its fault, retries and timeout, and the destinations'
    circuit breakers: the edges, and what each target serves for them (its attempts);
    None when nothing of that touches the call (split as it is)."""
    found = applied(mesh, call, route, breakers)
    if found is None:
        return None
    rule, policy, held = found
    ns, home = call.namespace, mesh.home(call.caller)
    grpc = call.protocol is Protocol.GRPC
    local: dict[tuple[str, str, str], float] = defaultdict(float)

    def answer(status: int, flags: str, rps: float) -> None:
        if rps > 0:
            local[("200", flags, grpc_status(status)) if grpc else (str(status), flags, "")] += rps

    unserved = mesh.unserved(home, ns, call.service).id
    legs: list[Routed] = []
    serves: dict[str, float] = {}
    if route is not None and route.rules and rule is None:  # no rule takes it: 404 NR
        answer(404, "NR", rate * wave(f"{call.caller}>{unserved}", t, 0.05))
        groups: list[Group] = []
        lost = 0.0
    else:
        groups, lost = _groups(mesh, call, rule, home)
    fault = policy.fault if policy is not None else None
    abort = fault.abort_percent / 100 if fault is not None and fault.abort_status else 0.0
    delay = fault.delay_percent / 100 if fault is not None and fault.delay_s else 0.0
    retry = retry_of(policy)
    timeout = policy.timeout_s * 1000 if policy is not None and policy.timeout_s else None
    for subset, host, share, targets in groups:
        b = merged(held.get(host, ()), subset)
        sent = {
            x: rate * share / len(targets) * wave(f"{call.caller}>{x}", t, 0.05) for x in targets
        }
        if abort and fault is not None and fault.abort_status:  # never sent upstream
            answer(fault.abort_status, "FI", sum(sent.values()) * abort)
            sent = {x: r * (1 - abort) for x, r in sent.items()}
        tried = {
            x: Attempts.of(
                call.protocol,
                _err(mesh.node(x), f"{call.caller}>{x}", t),
                mesh.node(x).behaviour.client_error_rate,
            )
            for x in targets
        }
        if b is not None and b.consecutive_errors is not None:
            out = {x: ejected(b, tried[x].failing(), sent[x] * tried[x].tries(retry)) for x in sent}
            most, total_out = most_ejected(b, len(targets)), sum(out.values())
            if total_out > most:
                out = {x: q * most / total_out for x, q in out.items()}
            all_out = math.prod(out.values()) if len(targets) <= most else 0.0
            total = sum(sent.values())
            answer(503, "UH", total * all_out)  # every endpoint ejected
            weights = {x: r * (1 - out[x]) for x, r in sent.items()}
            left = sum(weights.values())
            sent = {
                x: total * (1 - all_out) * w / left if left > 0 else 0.0 for x, w in weights.items()
            }
        held_at_once = capacity(b)
        if not math.isinf(held_at_once):
            load = sum(r * tried[x].tries(retry) * latency(x) / 1000 for x, r in sent.items())
            refused = overflow(held_at_once, load)
            answer(503, "UO", sum(sent.values()) * refused)
            sent = {x: r * (1 - refused) for x, r in sent.items()}
        for x, r in sent.items():
            if r <= 0:
                continue
            a = tried[x]
            served = r * a.tries(retry) / a.tries(DEFAULT_RETRY)  # the callee's attempts
            shaping = Shaping(
                retry=retry,
                attempts=None if retry == DEFAULT_RETRY else a,
                timeout_ms=timeout,
                delay_ms=fault.delay_s * 1000 if delay and fault and fault.delay_s else 0.0,
                delay_share=delay,
            )
            legs.append((call, x, r, shaping))
            serves[x] = serves.get(x, 0.0) + served
    answer(503, "UH", rate * lost * wave(f"{call.caller}>{unserved}", t, 0.05))
    if local:
        said = tuple(Outcome(c, f, g, rps, arrived=False) for (c, f, g), rps in local.items())
        legs.append((call, unserved, sum(local.values()), Shaping(local=said)))
        serves[unserved] = sum(local.values())
    return legs, serves


def choices(
    mesh: SimMesh,
    call: SimCall,
    t: float,
    routes: Mapping[RouteKey, Route],
    breakers: Breakers,
    latency: Callable[[str], float],
    shaped: bool,
) -> list[tuple[str, float, Shaping | None]]:
    """Where one request of a call goes, and how the caller's proxy answers it there:
    each target with its chance (`shaped`: whether `policies_in_force`, else `split`)."""
    if shaped:
        route = routes.get((mesh.home(call.caller), call.namespace, call.service))
        treated = policed_legs(mesh, call, 1.0, t, route, breakers, latency)
        if treated is not None:
            return [(target, r, shaping) for _, target, r, shaping in treated[0]]
    return [(target, share, None) for target, share in split(mesh, call, routes)]


def latency_guess(mesh: SimMesh, routes: Mapping[RouteKey, Route] | None) -> Callable[[str], float]:
    """A workload's mean latency (ms), its own and what it waits for below, as the
    walk would find it: what a connection pool's load (rps x latency) needs ahead of it."""

    memo: dict[str, float] = {}

    def below(wid: str) -> float:
        if wid in memo:
            return memo[wid]
        w = mesh.node(wid)
        memo[wid] = w.behaviour.median_ms  # a cycle, were there one, ends here
        total = w.behaviour.median_ms
        for call in mesh.calls_by_caller.get(wid, ()):
            if call.protocol is not Protocol.TCP:
                for x, share in split(mesh, call, routes):
                    total += call.per_request * share * below(x)
        memo[wid] = total
        return total

    def mean(wid: str) -> float:
        return below(wid) * math.exp(mesh.node(wid).behaviour.sigma ** 2 / 2)

    return mean


def flows(
    mesh: SimMesh,
    t: float,
    routes: Mapping[RouteKey, Route] | None = None,
    *,
    keep: Keep | None = None,
    splits: dict[SimCall, list[tuple[str, float]]] | None = None,
    kept: Splits | None = None,
    breakers: Breakers | None = None,
) -> list[SimEdge]:
    """Every edge carrying traffic at time `t` (seconds since the epoch), routed by
    `routes` (the mesh's current routes when None) under `breakers` (the mesh's current
    circuit breakers when None). `keep(source, destination)` picks the edges wanted (all
    are still walked: rates come from upstream, latencies from downstream); `splits`
    keeps `split`'s answers between calls with the same routes; `kept` keeps them for as
    long as what they read is the same (`kept_split`)."""
    inbound: dict[str, float] = defaultdict(float)
    for root, rps in mesh.roots.items():
        inbound[root] += rps * wave(root, t, 0.08)
    by_caller = mesh.calls_by_caller
    order = mesh.call_order
    in_force = mesh.routes if routes is None else routes
    held = mesh.breakers if breakers is None else breakers
    shaped = policies_in_force(in_force, held)
    latency = latency_guess(mesh, routes)
    routed: list[Routed] = []
    for wid in order:
        served = inbound.get(wid, 0.0)
        if served <= 0:
            continue
        for call in by_caller[wid]:
            rate = served * call.per_request
            if shaped:
                home = mesh.home(wid)
                route = in_force.get((home, call.namespace, call.service))
                treated = policed_legs(mesh, call, rate, t, route, held, latency)
                if treated is not None:
                    routed += treated[0]
                    for target, load in treated[1].items():
                        inbound[target] += load
                    continue
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
                    routed.append((call, target, r, None))

    return _edges(mesh, routed, inbound, t, keep)


def _with(flags: str, flag: str) -> str:
    return flag if flags == "-" else f"{flags},{flag}"


def _retried(call: SimCall, rate: float, attempts: Attempts, retry: Retry) -> list[Outcome]:
    """The callee's answers as the caller sees them under `retry`: retried failures
    rarer (exhausted: `URX`), the others as they are."""
    seen = attempts.answers(retry)
    exhausted = "URX" if retry.retries > 0 else "-"
    if call.protocol is Protocol.GRPC:
        said = [
            Outcome("200", exhausted if "14" in retry.on else "-", "14", rate * seen.get("14", 0)),
            Outcome("200", exhausted if "2" in retry.on else "-", "2", rate * seen.get("2", 0)),
        ]
        ok = Outcome("200", "-", "0", rate - sum(o.rps for o in said))
    else:
        said = [
            Outcome("500", exhausted if "500" in retry.on else "-", "", rate * seen.get("500", 0)),
            Outcome("503", exhausted if "503" in retry.on else "-", "", rate * seen.get("503", 0)),
            Outcome("503", "UF", "", rate * seen.get("UF", 0), arrived=False),
            Outcome("404", "-", "", rate * seen.get("404", 0)),
        ]
        ok = Outcome("200", "-", "", rate - sum(o.rps for o in said))
    return [o for o in (ok, *said) if o.rps > 0]


def _shaped(
    call: SimCall,
    dest: SimWorkload,
    rate: float,
    key: str,
    t: float,
    guard: Guard | None,
    shaping: Shaping,
    median_ms: float,
) -> tuple[Outcome, ...]:
    """The callee's answers under the caller's proxy's retries, a fault's delay (`DI`)
    and a timeout: a request slower than it answered 504 `UT` at the timeout."""
    refusal = guard.refusal if guard is not None else None
    if refusal is not None:
        return (Outcome(refusal.code, refusal.flags, "", rate, arrived=refusal.arrived),)
    base = (
        _outcomes(call, dest, rate, key, t)
        if shaping.attempts is None
        else tuple(_retried(call, rate, shaping.attempts, shaping.retry))
    )
    d, delay, timeout = shaping.delay_share, shaping.delay_ms, shaping.timeout_ms
    if not d and timeout is None:
        return base
    sigma = dest.behaviour.sigma

    def slower(ms: float) -> float:  # share of the callee's answers slower than `ms`
        if ms <= 0:
            return 1.0
        z = (math.log(ms) - math.log(median_ms)) / sigma
        return 1.0 - 0.5 * math.erfc(-z / math.sqrt(2))

    late_plain = slower(timeout) if timeout is not None else 0.0
    late_delayed = slower(timeout - delay) if timeout is not None else 0.0
    out: list[Outcome] = []
    for o in base:
        out.append(Outcome(o.code, o.flags, o.grpc_status, o.rps * (1 - d) * (1 - late_plain),
                           o.arrived))  # fmt: skip
        if d:
            out.append(Outcome(o.code, _with(o.flags, "DI"), o.grpc_status,
                               o.rps * d * (1 - late_delayed), o.arrived))  # fmt: skip
    grpc = call.protocol is Protocol.GRPC
    code, status = ("200", "4") if grpc else ("504", "")
    out.append(Outcome(code, "UT", status, rate * (1 - d) * late_plain))
    out.append(Outcome(code, "UT,DI", status, rate * d * late_delayed))
    return tuple(o for o in out if o.rps > rate * 1e-6)  # a share no counter would show


def _edges(
    mesh: SimMesh,
    routed: list[Routed],
    inbound: dict[str, float],
    t: float,
    keep: Keep | None = None,
) -> list[SimEdge]:
    median = medians(mesh, routed, inbound)
    return [
        edge_of(mesh, item, median, t)
        for item in routed
        if keep is None or keep(item[0].caller, item[1])
    ]


def medians(mesh: SimMesh, routed: list[Routed], inbound: Mapping[str, float]) -> dict[str, float]:
    """Each workload's median answer: its own time plus what it waits for downstream.
    Callees are walked before callers, adding each callee's median, weighted by calls
    per request."""
    by_caller: dict[str, list[Routed]] = defaultdict(list)
    for item in routed:
        by_caller[item[0].caller].append(item)
    workloads = mesh.workloads
    node = mesh.node
    tcp = Protocol.TCP
    median: dict[str, float] = {}
    for wid in reversed(mesh.call_order):
        total = workloads[wid].behaviour.median_ms
        served = inbound.get(wid, 0.0)
        for call, target, r, _ in by_caller.get(wid, ()):
            if call.protocol is not tcp and served > 0:
                below = median.get(target)
                if below is None:
                    below = node(target).behaviour.median_ms
                total += r / served * below
        median[wid] = total
    return median


def edge_of(mesh: SimMesh, item: Routed, median: Mapping[str, float], t: float) -> SimEdge:
    """One routed call's edge at `t`, its latency from `medians`."""
    call, target, r, shaping = item
    source = mesh.node(call.caller)
    dest = mesh.node(target)
    behaviour = dest.behaviour
    below = median.get(target)
    guard = mesh.guard(source, dest, t) if mesh.guard is not None else None
    median_ms = behaviour.median_ms if below is None else below
    key = f"{call.caller}>{target}"
    if call.protocol is Protocol.TCP:
        answers: tuple[Outcome, ...] = ()
    elif shaping is None:
        answers = _answers(call, dest, r, key, t, guard)
    elif shaping.local:
        answers = shaping.local
    else:
        answers = _shaped(call, dest, r, key, t, guard, shaping, median_ms)
    shape = shaping if shaping is not None and not shaping.local else None
    return SimEdge(
        source,
        dest,
        call.namespace,
        call.service,
        mesh.service_fqdn(call.namespace, call.service),
        call.protocol,
        r,
        answers,
        median_ms,
        behaviour.sigma,
        r * call.request_bytes,
        r * call.response_bytes,
        guard is not None and guard.plaintext,
        delay_ms=shape.delay_ms if shape is not None else 0.0,
        delay_share=shape.delay_share if shape is not None else 0.0,
        timeout_ms=shape.timeout_ms if shape is not None else None,
    )
