"""The simulated mesh's live traffic as the console's refresh asks for it, planned once: the
calls in walking order, each split over its targets, with what each edge's figures need
that does not change from one moment to the next (its ids, the seeds of its noise, its
latency's factors), kept while the topology, the routes and the circuit breakers hold.
A refresh then works out only the figures of its moment, straight into the model's
edges: the same figures as `traffic.flows` and `SimEdge.stats` give (issue 17: at 20,000
services the simulator cost more of a refresh than the console itself).

Over 400 lines: the plan and the figures made from it must stay equal to the walk of
`traffic.flows`, step for step (noise, splits, security, medians), which is easier to
check with them side by side in one module (`tests/test_sim_walk.py` compares them)."""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from meshtop.model import Edge, EdgeStats, EdgeStatsDraft, NodeKind, Protocol, Route, Workload
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
from meshtop.turns import giving_way


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
    figures: list[LegFigures] = field(init=False)  # what each leg's figures are made of
    policed: bool = field(init=False)  # some call's legs are a policy's (`_legs`)
    # per 10 s bucket: each leg's noise, and its error wave's (0.0 where none)
    _bucket: int | None = None
    _noise: list[float] = field(default_factory=list)
    _err_noise: list[float] = field(default_factory=list)
    # the edges' ends in the order last walked, and the nodes they made
    _ends: list[int] = field(default_factory=list)
    _nodes: list[Workload] = field(default_factory=list)
    # what the mesh's security decided from, and for each leg so far its mTLS share (1.0
    # or 0.0), or -1.0 where the callee's figures are not the leg's (a refusal)
    _guarded: object = None
    _secured: list[float | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        legs = self.legs
        self.phases = [leg.noise.phase for leg in legs]
        self.shares = [leg.share for leg in legs]
        self.targets = [leg.target for leg in legs]
        self.own = [leg.dest.behaviour.median_ms for leg in legs]
        self.figures = [_figures(leg) for leg in legs]
        self.policed = any(mine is None for _, calls in self.steps for _, mine in calls)

    def secured(self, decided_by: object) -> list[float | None] | None:
        """Each leg's mTLS share under the mesh's security (-1.0: refused) while
        `decided_by` (what it decides a guard from) is the same, None for a leg not
        worked out yet; None when that is unknown."""
        if decided_by is None:
            return None
        if decided_by != self._guarded:
            self._guarded, self._secured = decided_by, [None] * len(self.legs)
        return self._secured

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


def live_traffic(
    mesh: SimMesh, t: float, kept: Splits, guards: object = None
) -> tuple[list[Edge], list[Workload]]:
    """The edges carrying traffic at `t` under the mesh's routes and breakers now, with
    their stats, and the nodes at their ends (in order of id): what `traffic.flows`
    (with `kept`) and `SimEdge.stats` give, for the refresh. `guards`: what the mesh's
    security decides from at `t` (None: unknown), its guard's answers kept while it is
    the same."""
    walk = plan(mesh, kept)
    inbound: dict[str, float] = defaultdict(float)
    for root, rps in mesh.roots.items():
        inbound[root] += rps * wave(root, t, 0.08)
    # the edges in walking order: a leg's number, or -1 - the number of a policy's item
    order: list[int] = []
    policed: list[Routed] = []  # a policy's items, as `traffic._edges` takes them
    rates = [0.0] * len(walk.legs)  # each leg's requests/s, 0 where it carried none
    shares, targets = walk.shares, walk.targets
    noise, err_noise = walk.noise(t)
    base = 2 * math.pi * t / 240.0  # as `wave` has it: + the key's phase
    sin = math.sin
    # each leg's wave at `t`, all at once: a tighter loop than the walk's
    waves = [
        1.0 + 0.05 * (0.7 * sin(base + phase) + 0.3 * n)
        for phase, n in zip(walk.phases, noise, strict=True)
    ]
    get = inbound.get
    mark = order.append
    latency = latency_guess(mesh, None) if walk.shaped else None
    for wid, calls in giving_way(walk.steps):  # a key's work on the screen's thread first
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
                for item in treated[0]:
                    mark(-1 - len(policed))
                    policed.append(item)
                for target, load in treated[1].items():
                    inbound[target] += load
                continue
            for i in mine:
                r = rate * shares[i] * waves[i]
                if r > 0:
                    inbound[targets[i]] += r
                    mark(i)
                    rates[i] = r
    if policed:
        routed = [
            policed[-1 - i] if i < 0 else (walk.legs[i].call, targets[i], rates[i], None)
            for i in order
        ]
        median = medians(mesh, routed, inbound)
    else:
        median = _medians(walk, inbound, rates)
    edges = _edges(mesh, walk, order, rates, policed, median, t, base, err_noise, guards)
    if order != walk._ends or policed:
        walk._ends = order
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


def _edges(
    mesh: SimMesh,
    walk: Walk,
    order: list[int],
    rates: Sequence[float],
    policed: list[Routed],
    median: Mapping[str, float],
    t: float,
    base: float,
    err_noise: Sequence[float],
    guards: object,
) -> list[Edge]:
    """Each edge walked, as `edge_of(...).stats()` makes it."""
    edges: list[Edge] = []
    add = edges.append
    legs, figures = walk.legs, walk.figures
    kept = walk.secured(guards)
    below_of = median.get
    sin = math.sin
    http, tcp = Protocol.HTTP, Protocol.TCP
    for i in giving_way(order):  # a key's work on the screen's thread goes first
        if i < 0:
            e = edge_of(mesh, policed[-1 - i], median, t)
            add(Edge(e.source.id, e.destination.id, e.stats(), e.service_fqdn))
            continue
        r = rates[i]
        mtls = kept[i] if kept is not None else None
        if mtls is None:
            mtls = _secured(mesh, legs[i], t)
            if kept is not None:
                kept[i] = mtls
        if mtls < 0:  # answered by the client's proxy, or refused: as `flows` makes it
            leg = legs[i]
            e = edge_of(mesh, (leg.call, leg.target, r, None), median, t)
            add(Edge(e.source.id, e.destination.id, e.stats(), e.service_fqdn))
            continue
        protocol, source, dest, fqdn, target, own, spread, err, erate, ok, rejected, bytes_ = (
            figures[i]
        )
        if protocol is tcp:
            stats = new_stats(
                tcp, 0.0, 0.0, None, None, None, mtls, {}, {}, {}, r * bytes_[0], r * bytes_[1], r
            )
            add(new_edge(source, dest, stats, fqdn))
            continue
        below = below_of(target)
        median_ms = own if below is None else below
        if err is None:  # fails nothing: `_http` and `_grpc` without an error
            served = r * ok
            statuses: dict[str, float] = {}
            codes = {"200": served} if served > 0 else {}
            if protocol is http:
                refused = r * rejected
                if refused > 0:
                    codes["404"] = refused
            elif served > 0:
                statuses["0"] = served
            flags: dict[str, float] = {}
            errors = 0.0
        else:  # `traffic._err`, its wave's noise kept for the bucket
            share = min(1.0, erate * (1.0 + 0.3 * (0.7 * sin(base + err) + 0.3 * err_noise[i])))
            codes, flags, statuses, errors = (
                _http(r, share, rejected) if protocol is http else _grpc(r, share)
            )
        e50, e95, e99 = spread
        stats = new_stats(
            protocol, r, errors / r if r else 0.0, median_ms * e50, median_ms * e95,
            median_ms * e99, mtls, codes, flags, statuses, 0.0, 0.0, 0.0,
        )  # fmt: skip
        add(new_edge(source, dest, stats, fqdn))
    return edges


def _secured(mesh: SimMesh, leg: Leg, t: float) -> float:
    """A leg's mTLS share under the mesh's security at `t`; -1.0 where its figures are
    not the callee's: refused, or answered by the client's proxy (a service's node)."""
    source, dest = leg.source, leg.dest
    guard = mesh.guard(source, dest, t) if mesh.guard is not None else None
    refused = guard is not None and guard.refusal is not None
    if (leg.answered_by_proxy or refused) and leg.call.protocol is not Protocol.TCP:
        return -1.0
    plaintext = guard is not None and guard.plaintext
    return 1.0 if source.sidecar and dest.sidecar and not plaintext else 0.0


# a leg's protocol, its ends' ids, its service's name, its target, the target's own median,
# exp(z sigma) for p50, p95 and p99, its error wave's phase (None: it fails nothing), the
# callee's error rate, the share served (1 - 0 - its 4xx share), its 4xx share, and TCP's
# bytes per connection each way
LegFigures = tuple[
    Protocol, str, str, str, str, float, tuple[float, float, float], float | None, float,
    float, float, tuple[int, int],
]  # fmt: skip


def _figures(leg: Leg) -> LegFigures:
    b = leg.dest.behaviour
    rejected = b.client_error_rate if leg.call.protocol is Protocol.HTTP else 0.0
    return (
        leg.call.protocol, leg.source_id, leg.dest_id, leg.fqdn, leg.target, b.median_ms,
        leg.spread, None if leg.err is None else leg.err.phase, b.error_rate,
        1 - 0.0 - rejected, rejected, (leg.call.request_bytes, leg.call.response_bytes),
    )  # fmt: skip


# The model's edges made without their dataclass `__init__`: a frozen dataclass sets each
# field through `object.__setattr__`, which for the 14 fields of `EdgeStats` was the
# largest cost of a simulated edge (51,239 a refresh at 20,000 services). Each is made as
# a twin class with the same slots, whose fields are plain stores (no frozen check), and
# is then given its own class, which the same slots allow: about half the time of setting
# each slot through its descriptor (issue 17). Every field, in the class's order (checked
# here, and the objects compared with the dataclass's own in tests/test_sim_walk.py).
_STATS = (
    "protocol", "rps", "error_rate", "p50_ms", "p95_ms", "p99_ms", "mtls", "response_codes",
    "response_flags", "grpc_statuses", "tcp_request_bps", "tcp_response_bps",
    "tcp_connections_per_s", "protocols",
)  # fmt: skip
_EDGE = ("source", "destination", "stats", "service")
if (
    tuple(f.name for f in fields(EdgeStats)) != _STATS
    or tuple(f.name for f in fields(Edge)) != _EDGE
    or EdgeStats.__slots__ != _STATS
    or Edge.__slots__ != _EDGE
):
    raise ImportError("meshtop.sim.walk makes every field of EdgeStats and Edge: name the new ones")


class _Edge:
    """`Edge`'s slots, unfrozen: what `new_edge` fills before it is an `Edge` (as
    `EdgeStatsDraft`)."""

    __slots__ = _EDGE
    source: str
    destination: str
    stats: EdgeStats
    service: str


def new_stats(
    protocol: Protocol,
    rps: float,
    error_rate: float,
    p50_ms: float | None,
    p95_ms: float | None,
    p99_ms: float | None,
    mtls: float,
    response_codes: dict[str, float],
    response_flags: dict[str, float],
    grpc_statuses: dict[str, float],
    tcp_request_bps: float,
    tcp_response_bps: float,
    tcp_connections_per_s: float,
) -> EdgeStats:
    """`EdgeStats(...)` of these fields, carrying one protocol (`protocols` empty)."""
    s = EdgeStatsDraft()
    s.protocol = protocol
    s.rps = rps
    s.error_rate = error_rate
    s.p50_ms = p50_ms
    s.p95_ms = p95_ms
    s.p99_ms = p99_ms
    s.mtls = mtls
    s.response_codes = response_codes
    s.response_flags = response_flags
    s.grpc_statuses = grpc_statuses
    s.tcp_request_bps = tcp_request_bps
    s.tcp_response_bps = tcp_response_bps
    s.tcp_connections_per_s = tcp_connections_per_s
    s.protocols = ()
    s.__class__ = EdgeStats  # type: ignore[assignment]
    return s  # type: ignore[return-value]


def new_edge(source: str, destination: str, stats: EdgeStats, service: str) -> Edge:
    """`Edge(source, destination, stats, service)`."""
    e = _Edge()
    e.source = source
    e.destination = destination
    e.stats = stats
    e.service = service
    e.__class__ = Edge  # type: ignore[assignment]
    return e  # type: ignore[return-value]


Figures = tuple[dict[str, float], dict[str, float], dict[str, float], float]


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


def _grpc(rate: float, err: float) -> Figures:
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
