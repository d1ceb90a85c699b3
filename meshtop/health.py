"""Thresholds that turn an edge's or a node's traffic into healthy, degraded or failing.
The defaults are Kiali's, so the colours mean the same thing to a Kiali user."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from itertools import compress, count
from operator import is_not

from meshtop.model import Edge, EdgeStats, Health, MeshSnapshot, Protocol
from meshtop.model.stats import client_errors

_TCP, _isfinite = Protocol.TCP, math.isfinite
_ORDER = {Health.IDLE: 0, Health.HEALTHY: 1, Health.DEGRADED: 2, Health.FAILING: 3}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Shares (0..1) of requests. A value *above* `degraded` degrades; a value *at or
    above* `failing` fails (Kiali: 5xx degraded above 0, failing from 10%)."""

    errors_degraded: float = 0.0
    errors_failing: float = 0.10
    client_errors_degraded: float = 0.10
    client_errors_failing: float = 0.20


DEFAULT_THRESHOLDS = Thresholds()


def client_error_rate(stats: EdgeStats) -> float:
    return stats.client_error_rate


def edge_health(stats: EdgeStats, t: Thresholds = DEFAULT_THRESHOLDS) -> Health:
    # the errors' grade (degraded above its threshold, failing from it) and the 4xx's
    # (degraded and failing from each), the worse of the two, in one pass: the console
    # grades every edge each refresh (51,239 at 20,000 services, issue 17), and the 4xx
    # share is added up only where the errors alone do not fail the edge already
    if stats.protocol is _TCP:
        return (
            Health.HEALTHY if stats.tcp_connections_per_s or stats.tcp_request_bps else Health.IDLE
        )
    rps = stats.rps
    if not rps > 0:  # no traffic, or no number at all (NaN)
        return Health.IDLE
    rate = stats.error_rate
    if not (_isfinite(rate) and _isfinite(rps)):
        # traffic we cannot judge is not healthy: an overflowing rate (two series at
        # 1e308 add to infinity) makes any share of it 0, whatever failed
        return Health.FAILING
    if rate >= t.errors_failing:
        return Health.FAILING
    client = client_errors(stats.response_codes, rps)
    if client >= t.client_errors_failing:
        return Health.FAILING
    if rate > t.errors_degraded or client >= t.client_errors_degraded:
        return Health.DEGRADED
    return Health.HEALTHY


def explain(stats: EdgeStats, t: Thresholds = DEFAULT_THRESHOLDS) -> str:
    """Why an edge has its health, in words: `failing: errors 12.00% ≥ 10%`."""
    health = edge_health(stats, t)
    if health is Health.IDLE:
        return "idle: no traffic in the window"
    if stats.protocol is Protocol.TCP:
        return "healthy: TCP traffic is not graded"
    if not (math.isfinite(stats.error_rate) and math.isfinite(stats.rps)):
        return "failing: the request or error rate is unknown (not a finite number)"
    errors, client = stats.error_rate, client_error_rate(stats)
    why = []
    if errors >= t.errors_failing:
        why.append(f"errors {errors:.2%} ≥ {_share(t.errors_failing)}")
    elif errors > t.errors_degraded:
        why.append(f"errors {errors:.2%} > {_share(t.errors_degraded)}")
    if client >= t.client_errors_failing:
        why.append(f"4xx {client:.2%} ≥ {_share(t.client_errors_failing)}")
    elif client >= t.client_errors_degraded:
        why.append(f"4xx {client:.2%} ≥ {_share(t.client_errors_degraded)}")
    if not why:
        why.append(
            f"errors {errors:.2%} within {_share(t.errors_degraded)}, "
            f"4xx {client:.2%} under {_share(t.client_errors_degraded)}"
        )
    return f"{health.value}: " + "; ".join(why)


def _share(x: float) -> str:
    """A threshold as the user wrote it: `10%`, `0.5%`."""
    return f"{x * 100:g}%"


BY_SEVERITY = (Health.IDLE, Health.HEALTHY, Health.DEGRADED, Health.FAILING)


def severity(health: Health) -> int:
    """How bad a health is: idle 0, healthy 1, degraded 2, failing 3."""
    return _ORDER[health]


def worst(healths: Iterable[Health]) -> Health:
    """The worst of `healths` (idle for none): `max` by `severity`, written out, as a view
    asks it of every box and line each refresh."""
    order, found, rank = _ORDER, Health.IDLE, -1
    for h in healths:
        r = order[h]
        if r > rank:
            found, rank = h, r
    return found


@dataclass(frozen=True, slots=True)
class Grades:
    """The health of every edge (by `(source, destination)`) and node of one snapshot."""

    edges: dict[tuple[str, str], Health]
    nodes: dict[str, Health]
    # each edge's `severity` by its place in the snapshot's edges, where no two share a
    # key (None otherwise): a view's line takes its calls' worst without their keys
    ranks: list[int] | None = field(default=None, repr=False, compare=False)


def node_health(
    edges: Mapping[tuple[str, str], Health], node_ids: Iterable[str]
) -> dict[str, Health]:
    """A node is as healthy as the requests it answers (the worst of its inbound edges);
    one that only calls out (a gateway, a client) takes the worst of its outbound ones."""
    inbound: dict[str, Health] = {}  # the worst of each node's, kept as they come
    outbound: dict[str, Health] = {}
    order = _ORDER
    for (source, destination), h in edges.items():
        now = inbound.get(destination)
        if now is None or order[h] > order[now]:
            inbound[destination] = h
        now = outbound.get(source)
        if now is None or order[h] > order[now]:
            outbound[source] = h
    return {n: inbound.get(n) or outbound.get(n) or Health.IDLE for n in node_ids}


def grade(snapshot: MeshSnapshot, t: Thresholds = DEFAULT_THRESHOLDS) -> Grades:
    """Grade each edge once, and each node by `node_health`."""
    edges = {e.key: edge_health(e.stats, t) for e in snapshot.edges}
    return Grades(edges, node_health(edges, snapshot.nodes), _ranks(edges, len(snapshot.edges)))


def _ranks(edges: Mapping[tuple[str, str], Health], calls: int) -> list[int] | None:
    """`Grades.ranks` of these grades, made of `calls` edges in order."""
    return list(map(_ORDER.__getitem__, edges.values())) if len(edges) == calls else None


# -- hysteresis: a health that does not flap --------------------------------------------

MARGIN = 0.10  # of each threshold: failing from 10% is entered at 11% and left under 9%
_GRADED = (Health.HEALTHY, Health.DEGRADED, Health.FAILING)


def scaled(t: Thresholds, factor: float) -> Thresholds:
    """Every threshold times `factor` (a threshold of 0 stays 0), rounded off so that
    10% times 1.1 is 11%, not 11.000000000000001%."""
    return Thresholds(*(round(getattr(t, f.name) * factor, 12) for f in fields(Thresholds)))


def settle(
    shown: Health | None,
    previous: Health | None,
    stats: EdgeStats,
    t: Thresholds = DEFAULT_THRESHOLDS,
    margin: float = MARGIN,
) -> Health:
    """The health to show for an edge whose figures are now `stats`, given the health
    shown so far (`shown`) and the one its figures had on the refresh before
    (`previous`; None for none): it changes between healthy, degraded and failing only
    when the figures cross a threshold by `margin` of it (as a share of the threshold),
    or when the new health has held on two refreshes in a row. To and from idle (no
    traffic), a first sight, and a number we cannot judge change at once."""
    now = edge_health(stats, t)
    if shown is None or shown not in _GRADED or now not in _GRADED or now == previous:
        return now
    reached = edge_health(stats, scaled(t, 1 + margin))  # past its thresholds by the margin
    kept = edge_health(stats, scaled(t, 1 - margin))  # not under them by the margin
    if _ORDER[reached] > _ORDER[shown]:
        return reached
    if _ORDER[kept] < _ORDER[shown]:
        return kept
    return shown


@dataclass
class HealthMemory:
    """What the console remembers of each workload edge's health between refreshes, so a
    figure near a threshold does not flap (see `settle`). A refresh is a new snapshot:
    grading the same one again (a redraw after a key press), or one with the same time
    and the same edges, gives the same grades and counts nothing. One-shot views
    (export, the CLI) grade without one."""

    margin: float = MARGIN
    shown: dict[tuple[str, str], Health] = field(default_factory=dict)
    # on the last refresh, by key where `_at` is None (else by place: `_at`, and this empty)
    seen: dict[tuple[str, str], Health] = field(default_factory=dict)
    _last: MeshSnapshot | None = field(default=None, repr=False, compare=False)
    _thresholds: Thresholds | None = None
    # the last snapshot's edges' ends and keys, in order: a refresh of the same calls
    # keys its grades with the same tuples instead of a new one per edge (51,239 at
    # 20,000 services, each for the garbage collector to look at), and finds each edge's
    # grades before at its place (`shown` and `seen` in the keys' order), not by its key
    # hashed twice; None where two of them share a key
    _ends: tuple[list[str], list[str]] = field(
        default_factory=lambda: ([], []), repr=False, compare=False
    )
    _keys: list[tuple[str, str]] = field(default_factory=list, repr=False, compare=False)
    _at: tuple[list[Health], list[Health]] | None = field(default=None, repr=False, compare=False)
    # the nodes and edges' ends (`_ends`) of the last nodes graded, and where each edge's
    # source and destination are among those nodes (-1: not a node)
    _places: tuple[list[str], object, list[int], list[int]] | None = field(
        default=None, repr=False, compare=False
    )

    def _is_new(self, snapshot: MeshSnapshot, t: Thresholds) -> bool:
        last = self._last
        if last is None or t != self._thresholds:
            return True
        if last is snapshot:
            return False
        return last.generated_at != snapshot.generated_at or last.edges != snapshot.edges

    def grade(self, snapshot: MeshSnapshot, t: Thresholds = DEFAULT_THRESHOLDS) -> Grades:
        if self._is_new(snapshot, t):
            if t != self._thresholds:  # other thresholds: start afresh
                self.shown, self.seen, self._at = {}, {}, None
            edges = snapshot.edges
            ends = snapshot.ends
            at = self._at
            if ends != self._ends:
                if at is not None:  # the grades before by key, from their places
                    self.seen = dict(zip(self._keys, at[1], strict=True))
                self._ends, self._keys, at = ends, [e.key for e in edges], None
            keys = self._keys
            if at is None:  # other calls, or some twice: each one's grades before by key
                get_shown, get_seen = self.shown.get, self.seen.get
                before_at = [get_shown(key) for key in keys]
                previous_at = [get_seen(key) for key in keys]
            else:
                before_at, previous_at = at  # type: ignore[assignment]
            seen_at = [edge_health(e.stats, t) for e in edges]
            shown_at = seen_at.copy()
            graded, margin = _GRADED, self.margin
            # `settle`, asked only where it may keep a health other than `now`: where it
            # is not the grade before (found at C's pace: on a steady refresh, few are)
            for i in compress(count(), map(is_not, seen_at, previous_at)):
                now, before, previous = seen_at[i], before_at[i], previous_at[i]
                if not (before is None or before not in graded or now not in graded):
                    shown_at[i] = settle(before, previous, edges[i].stats, t, margin)
            # one gone is forgotten; of two with one key, the last one stands
            self.shown = dict(zip(keys, shown_at, strict=True))
            if len(self.shown) == len(keys):  # the next refresh finds them by place
                self._at, self.seen = (shown_at, seen_at), {}
            else:
                self._at, self.seen = None, dict(zip(keys, seen_at, strict=True))
        self._last, self._thresholds = snapshot, t
        shown = self.shown  # shared with the grades: never changed, only replaced
        ranks = _ranks(shown, len(snapshot.edges))
        if ranks is None:
            return Grades(shown, node_health(shown, snapshot.nodes))
        return Grades(shown, self._node_health(snapshot, ranks), ranks)

    def _node_health(self, snapshot: MeshSnapshot, ranks: list[int]) -> dict[str, Health]:
        """`node_health` of the edges graded (`ranks`, no two with one key), from where
        each edge's ends are among the nodes, found once for the same nodes and calls."""
        nodes = list(snapshot.nodes)
        if self._places is None or self._places[0] != nodes or self._places[1] is not self._ends:
            where = {n: i for i, n in enumerate(nodes)}
            sources, destinations = self._ends
            self._places = (
                nodes, self._ends, [where.get(n, -1) for n in sources],
                [where.get(n, -1) for n in destinations],
            )  # fmt: skip
        _, _, sources_at, destinations_at = self._places
        inbound = [-1] * (len(nodes) + 1)  # the worst rank of each node's (-1: none yet);
        outbound = [-1] * (len(nodes) + 1)  # the last place is for an end not a node
        for a, b, r in zip(sources_at, destinations_at, ranks, strict=True):
            if r > inbound[b]:
                inbound[b] = r
            if r > outbound[a]:
                outbound[a] = r
        by = BY_SEVERITY
        return {
            n: by[i] if i >= 0 else by[o] if o >= 0 else Health.IDLE
            for n, i, o in zip(nodes, inbound, outbound, strict=False)
        }


# -- problems: what `n` goes to, worst first ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """A node in trouble (degraded or failing), with the requests it answers (or, for a
    node that only calls out, sends) over its graded edges: how many per second, how
    many failed (its impact), how many the callers got wrong (4xx); and its worst edge,
    the one to show in a table."""

    node: str
    health: Health
    rps: float
    errors_per_s: float
    client_errors_per_s: float
    edge: tuple[str, str] | None

    @property
    def error_rate(self) -> float:
        return self.errors_per_s / self.rps if self.rps > 0 else 0.0

    @property
    def client_error_rate(self) -> float:
        return self.client_errors_per_s / self.rps if self.rps > 0 else 0.0


def _per_s(rps: float, share: float) -> float:
    """rps times share, 0 for a figure that is not a number (its health already says so)."""
    value = rps * share
    return value if math.isfinite(value) and value > 0 else 0.0


def errors_per_s(stats: EdgeStats) -> float:
    """An edge's failed requests per second (5xx, gRPC errors, no response): its impact."""
    return 0.0 if stats.protocol is Protocol.TCP else _per_s(stats.rps, stats.error_rate)


def problems(
    snapshot: MeshSnapshot, grades: Grades, groups: Mapping[str, Iterable[str]]
) -> list[Problem]:
    """The nodes drawn (`groups`: each drawn node's id and the snapshot nodes it stands
    for) that are failing or degraded, worst first: failing before degraded, then by
    failed requests per second (a busy edge at 1.6% before an idle one at 2%), then by
    4xx per second and by traffic. A node's figures are those of the edges that grade
    it (`node_health`): the calls into its members, or out of a member nobody calls."""
    inbound: dict[str, list[Edge]] = {}
    outbound: dict[str, list[Edge]] = {}
    for e in snapshot.edges:
        inbound.setdefault(e.destination, []).append(e)
        outbound.setdefault(e.source, []).append(e)
    found = []
    for node, members in groups.items():
        ids = tuple(members)
        health = worst(grades.nodes.get(m, Health.IDLE) for m in ids)
        if health not in (Health.DEGRADED, Health.FAILING):
            continue
        edges = [e for m in ids for e in (inbound.get(m) or outbound.get(m) or ())]
        rps = sum(e.stats.rps for e in edges if math.isfinite(e.stats.rps))
        errors = sum(errors_per_s(e.stats) for e in edges)
        client = sum(_per_s(e.stats.rps, e.stats.client_error_rate) for e in edges)
        graded = [(severity(grades.edges.get(e.key, Health.IDLE)), e) for e in edges]
        worst_edge = max(
            graded,
            key=lambda g: (g[0], errors_per_s(g[1].stats), _per_s(g[1].stats.rps, 1.0)),
            default=None,
        )
        edge = worst_edge[1].key if worst_edge is not None else None
        found.append(Problem(node, health, rps, errors, client, edge))
    found.sort(
        key=lambda p: (-severity(p.health), -p.errors_per_s, -p.client_errors_per_s, -p.rps, p.node)
    )
    return found
