"""The simulated mesh's live traffic as the console's refresh asks for it, planned once: the
calls in walking order, each split over its targets, with what each edge's figures need
that does not change from one moment to the next (its ids, the seeds of its noise, its
latency's factors), kept while the topology, the routes and the circuit breakers hold.
A refresh then works out only the figures of its moment, straight into the model's
edges: the same figures as `traffic.flows` and `SimEdge.stats` give (issue 17: at 20,000
services the simulator cost more of a refresh than the console itself)."""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from meshtop.model import Edge, EdgeStats, NodeKind, Protocol, Route, Workload
from meshtop.sim.topology import RouteKey, SimCall, SimMesh, SimWorkload
from meshtop.sim.traffic import (
    Breakers,
    Routed,
    Splits,
    Z,
    applied,
    edge_of,
    kept_split,
    latency_guess,
    medians,
    policed_legs,
    policies_in_force,
    wave,
)


@dataclass(frozen=True, slots=True)
class Noise:
    """`wave`'s two parts for one key, worked out from the key once: the phase of its
    slow drift and its noise's CRC seed (the CRC of `"{crc of the key}:"`, which the
    CRC of the 10 s bucket's number continues)."""

    phase: float
    seed: int

    @staticmethod
    def of(key: str) -> Noise:
        h = zlib.crc32(key.encode())
        return Noise((h % 6283) / 1000.0, zlib.crc32(f"{h}:".encode()))

    def noise(self, bucket: bytes) -> float:
        return (zlib.crc32(bucket, self.seed) / 0xFFFFFFFF - 0.5) * 2.0


@dataclass(frozen=True, slots=True)
class Leg:
    """One call to one target, split as it is (no policy of the caller's proxy touches
    it), and what its figures need that holds from one moment to the next."""

    call: SimCall
    target: str
    share: float
    noise: Noise  # of `caller>target`
    source: SimWorkload
    dest: SimWorkload
    source_id: str
    dest_id: str
    fqdn: str
    # the callee's failures' wave (`caller>target/err`), None where it fails nothing
    err: Noise | None
    # the latency's quantiles over its median: exp(z sigma), for p50, p95, p99
    spread: tuple[float, float, float]
    tcp: bool
    grpc: bool
    # answered by the client's proxy, not by the callee's figures: a service's node
    answered_by_proxy: bool


Step = tuple[SimCall, tuple[int, ...] | None]  # a call, its legs (None: its policy's)


@dataclass
class Walk:
    """The live walk of one mesh under one set of routes and circuit breakers."""

    reads: tuple[object, ...]
    steps: list[tuple[str, list[Step]]]  # each caller in walking order, with its calls
    legs: list[Leg]
    shaped: bool  # some call's proxy applies a policy: its legs are worked out each time
    routes: Mapping[RouteKey, Route]
    breakers: Breakers
    # each workload, callees before callers, with its own median and its HTTP and gRPC
    # legs: what `_medians` sums
    down: list[tuple[str, float, tuple[int, ...]]]
    # the legs' figures the walk reads most, side by side: a list is quicker to read
    phases: list[float] = field(init=False)
    shares: list[float] = field(init=False)
    targets: list[str] = field(init=False)
    own: list[float] = field(init=False)  # each target's own median
    policed: bool = field(init=False)  # some call's legs are a policy's (`_legs`)
    # per 10 s bucket: each leg's noise, and its error wave's (0.0 where none)
    _bucket: int | None = None
    _noise: list[float] = field(default_factory=list)
    _err_noise: list[float] = field(default_factory=list)
    # the edges' ends in the order last walked, and the nodes they made
    _ends: list[int] = field(default_factory=list)
    _nodes: list[Workload] = field(default_factory=list)

    def __post_init__(self) -> None:
        legs = self.legs
        self.phases = [leg.noise.phase for leg in legs]
        self.shares = [leg.share for leg in legs]
        self.targets = [leg.target for leg in legs]
        self.own = [leg.dest.behaviour.median_ms for leg in legs]
        self.policed = any(mine is None for _, calls in self.steps for _, mine in calls)

    def noise(self, t: float) -> tuple[list[float], list[float]]:
        bucket = int(t // 10)
        if bucket != self._bucket:
            said = str(bucket).encode()
            self._noise = [leg.noise.noise(said) for leg in self.legs]
            self._err_noise = [0.0 if leg.err is None else leg.err.noise(said) for leg in self.legs]
            self._bucket = bucket
        return self._noise, self._err_noise


def reads(
    mesh: SimMesh, routes: Mapping[RouteKey, Route], breakers: Breakers
) -> tuple[object, ...]:
    """What a walk is planned from: while these are the same (each entry the same object,
    or an equal one), so is the walk."""
    return (
        list(mesh.workloads.values()),
        list(mesh.services.items()),
        list(mesh.subsets.items()),
        list(routes.items()),
        list(breakers.items()),
        list(mesh.roots.items()),
        len(mesh.calls),
        mesh.guard,
    )


def plan(mesh: SimMesh, kept: Splits) -> Walk:
    """The mesh's walk under its routes and breakers now: the one kept on the mesh while
    what it was planned from holds, else planned again (`kept`: each call's split, kept
    for as long as what it reads is the same, `kept_split`)."""
    routes, breakers = mesh.routes, mesh.breakers
    now = reads(mesh, routes, breakers)
    walk = mesh.walk
    if isinstance(walk, Walk) and walk.reads == now:
        return walk
    shaped = policies_in_force(routes, breakers)
    legs: list[Leg] = []
    steps: list[tuple[str, list[Step]]] = []
    spreads: dict[str, tuple[float, float, float]] = {}
    for wid in mesh.call_order:
        calls = mesh.calls_by_caller[wid]
        if not calls:
            continue
        mine: list[Step] = []
        for call in calls:
            if shaped:
                route = routes.get((mesh.home(wid), call.namespace, call.service))
                if applied(mesh, call, route, breakers) is not None:
                    mine.append((call, None))
                    continue
            first = len(legs)
            for target, share in kept_split(mesh, call, None, kept):
                legs.append(_leg(mesh, call, target, share, spreads))
            mine.append((call, tuple(range(first, len(legs)))))
        steps.append((wid, mine))
    by_caller = {
        wid: tuple(i for _, mine in calls for i in mine or () if not legs[i].tcp)
        for wid, calls in steps
    }
    down = [
        (wid, mesh.workloads[wid].behaviour.median_ms, by_caller.get(wid, ()))
        for wid in reversed(mesh.call_order)
    ]
    walk = Walk(now, steps, legs, shaped, routes, breakers, down)
    mesh.walk = walk
    return walk


def _leg(
    mesh: SimMesh,
    call: SimCall,
    target: str,
    share: float,
    spreads: dict[str, tuple[float, float, float]],
) -> Leg:
    source, dest = mesh.node(call.caller), mesh.node(target)
    key = f"{call.caller}>{target}"
    sigma = dest.behaviour.sigma
    spread = spreads.get(target)
    if spread is None:
        spread = spreads[target] = (
            math.exp(Z[0.5] * sigma),
            math.exp(Z[0.95] * sigma),
            math.exp(Z[0.99] * sigma),
        )
    return Leg(
        call,
        target,
        share,
        Noise.of(key),
        source,
        dest,
        source.id,
        dest.id,
        mesh.service_fqdn(call.namespace, call.service),
        Noise.of(key + "/err") if dest.behaviour.error_rate else None,
        spread,
        call.protocol is Protocol.TCP,
        call.protocol is Protocol.GRPC,
        dest.workload.kind is NodeKind.SERVICE,
    )


def live_traffic(mesh: SimMesh, t: float, kept: Splits) -> tuple[list[Edge], list[Workload]]:
    """The edges carrying traffic at `t` under the mesh's routes and breakers now, with
    their stats, and the nodes at their ends (in order of id): what `traffic.flows`
    (with `kept`) and `SimEdge.stats` give, for the refresh."""
    walk = plan(mesh, kept)
    inbound: dict[str, float] = defaultdict(float)
    for root, rps in mesh.roots.items():
        inbound[root] += rps * wave(root, t, 0.08)
    # the items `traffic._edges` takes, and for each the leg it is (-1: a policy's)
    routed: list[Routed] = []
    which: list[int] = []
    rates = [0.0] * len(walk.legs)  # each leg's requests/s, 0 where it carried none
    phases, shares, targets = walk.phases, walk.shares, walk.targets
    noise, err_noise = walk.noise(t)
    base = 2 * math.pi * t / 240.0  # as `wave` has it: + the key's phase
    sin = math.sin
    get = inbound.get
    add, mark = routed.append, which.append
    latency = latency_guess(mesh, None) if walk.shaped else None
    for wid, calls in walk.steps:
        served = get(wid, 0.0)
        if served <= 0:
            continue
        for call, mine in calls:
            rate = served * call.per_request
            if mine is None:  # the caller's proxy applies a policy: as `flows` does
                assert latency is not None
                route = walk.routes.get((mesh.home(wid), call.namespace, call.service))
                treated = policed_legs(mesh, call, rate, t, route, walk.breakers, latency)
                assert treated is not None  # `applied` said so when planned
                routed += treated[0]
                which += [-1] * len(treated[0])
                for target, load in treated[1].items():
                    inbound[target] += load
                continue
            for i in mine:
                r = rate * shares[i] * (1.0 + 0.05 * (0.7 * sin(base + phases[i]) + 0.3 * noise[i]))
                if r > 0:
                    target = targets[i]
                    inbound[target] += r
                    add((call, target, r, None))
                    mark(i)
                    rates[i] = r
    median = medians(mesh, routed, inbound) if walk.policed else _medians(walk, inbound, rates)
    edges = [
        _edge(mesh, walk, item, i, median, t, base, err_noise)
        for item, i in zip(routed, which, strict=True)
    ]
    if which != walk._ends or walk.policed:
        walk._ends = which
        used = {n for e in edges for n in (e.source, e.destination)}
        walk._nodes = [mesh.node(n).workload for n in sorted(used)]
    return edges, walk._nodes


def _medians(walk: Walk, inbound: Mapping[str, float], rates: Sequence[float]) -> dict[str, float]:
    """`traffic.medians` of a walk without a policy's legs: the same sums, in the same
    order, from each leg's rate."""
    get = inbound.get
    targets, own = walk.targets, walk.own
    median: dict[str, float] = {}
    below_of = median.get
    for wid, total, mine in walk.down:
        served = get(wid, 0.0)
        if served > 0:
            for i in mine:
                r = rates[i]
                if r > 0:
                    below = below_of(targets[i])
                    total += r / served * (own[i] if below is None else below)
        median[wid] = total
    return median


def _edge(
    mesh: SimMesh,
    walk: Walk,
    item: Routed,
    i: int,
    median: Mapping[str, float],
    t: float,
    base: float,
    err_noise: Sequence[float],
) -> Edge:
    """One routed call's edge, as `edge_of(...).stats()` makes it."""
    if i < 0:
        e = edge_of(mesh, item, median, t)
        return Edge(e.source.id, e.destination.id, e.stats(), e.service_fqdn)
    leg = walk.legs[i]
    r = item[2]
    source, dest = leg.source, leg.dest
    guard = mesh.guard(source, dest, t) if mesh.guard is not None else None
    plaintext = guard is not None and guard.plaintext
    mtls = 1.0 if source.sidecar and dest.sidecar and not plaintext else 0.0
    if leg.tcp:
        call = leg.call
        stats = EdgeStats(
            protocol=Protocol.TCP,
            mtls=mtls,
            tcp_request_bps=r * call.request_bytes,
            tcp_response_bps=r * call.response_bytes,
            tcp_connections_per_s=r,
        )
        return Edge(leg.source_id, leg.dest_id, stats, leg.fqdn)
    if leg.answered_by_proxy or (guard is not None and guard.refusal is not None):
        e = edge_of(mesh, item, median, t)
        return Edge(e.source.id, e.destination.id, e.stats(), e.service_fqdn)
    b = dest.behaviour
    below = median.get(leg.target)
    median_ms = b.median_ms if below is None else below
    err = 0.0
    if leg.err is not None:  # `traffic._err`, its wave's noise kept for the bucket
        slow = math.sin(base + leg.err.phase)
        err = min(1.0, b.error_rate * (1.0 + 0.3 * (0.7 * slow + 0.3 * err_noise[i])))
    codes, flags, grpc, errors = (_grpc if leg.grpc else _http)(r, err, b.client_error_rate)
    e50, e95, e99 = leg.spread
    stats = EdgeStats(
        protocol=leg.call.protocol,
        rps=r,
        error_rate=errors / r if r else 0.0,
        p50_ms=median_ms * e50,
        p95_ms=median_ms * e95,
        p99_ms=median_ms * e99,
        mtls=mtls,
        response_codes=codes,
        response_flags=flags,
        grpc_statuses=grpc,
    )
    return Edge(leg.source_id, leg.dest_id, stats, leg.fqdn)


Figures = tuple[dict[str, float], dict[str, float], dict[str, float], float]
_NONE: dict[str, Any] = {}


def _http(rate: float, err: float, rejected: float) -> Figures:
    """`traffic._outcomes` of an HTTP call, summed as `SimEdge.stats` sums them: the
    response codes, the flags, the gRPC statuses (none) and the errors per second."""
    ok = rate * (1 - err - rejected)
    codes: dict[str, float] = {}
    flags: dict[str, float] = {}
    errors = 0.0
    if ok > 0:
        codes["200"] = 0.0 + ok
    if err:
        failed = rate * err * 0.6
        retried = rate * err * 0.25
        unreached = rate * err * 0.15
        if failed > 0:
            codes["500"] = 0.0 + failed
            errors += failed
        if retried > 0:
            codes["503"] = 0.0 + retried
            flags["URX"] = 0.0 + retried
            errors += retried
        if unreached > 0:
            codes["503"] = codes.get("503", 0.0) + unreached
            flags["UF"] = 0.0 + unreached
            errors += unreached
    refused = rate * rejected
    if refused > 0:
        codes["404"] = 0.0 + refused
    return codes, flags, {}, errors


def _grpc(rate: float, err: float, rejected: float) -> Figures:
    """`_http` for a gRPC call: every answer HTTP 200, its status UNAVAILABLE or UNKNOWN."""
    ok = rate * (1 - err)
    codes: dict[str, float] = {}
    statuses: dict[str, float] = {}
    errors = 0.0
    total = 0.0
    if ok > 0:
        total += ok
        statuses["0"] = 0.0 + ok
    unavailable = rate * err * 0.7
    if unavailable > 0:
        total += unavailable
        statuses["14"] = 0.0 + unavailable
        errors += unavailable
    unknown = rate * err * 0.3
    if unknown > 0:
        total += unknown
        statuses["2"] = 0.0 + unknown
        errors += unknown
    if statuses:
        codes["200"] = total
    return codes, {}, statuses, errors
