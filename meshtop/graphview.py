"""What the topology graph shows of a snapshot: nodes grouped by app, versioned app,
workload or service; namespaces collapsed into one node; a filter; a focus on a node's
neighbourhood. Headless: the console draws the result, tests check it.

Over 400 lines: a view's shape (its boxes and the calls each line draws, kept per
topology) and the figures added up on it each refresh are one thing made in two steps
(issue 17), beside the grouping, filter and focus that decide that shape."""

from __future__ import annotations

import enum
import math
import re
import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, eq, itemgetter
from typing import Any

from meshtop.errors import UsageError
from meshtop.health import (
    BY_SEVERITY,
    DEFAULT_THRESHOLDS,
    Grades,
    HealthMemory,
    Thresholds,
    grade,
    worst,
)
from meshtop.model import (
    SERVICE_PREFIX,
    Edge,
    EdgeStats,
    EdgeStatsDraft,
    Health,
    MeshSnapshot,
    NodeKind,
    Protocol,
    Workload,
    marked,
)
from meshtop.turns import give_way, giving_way


class Grouping(enum.StrEnum):
    VERSIONED_APP = "version"  # reviews v1, reviews v2 (the default, as Kiali's)
    APP = "app"  # reviews
    WORKLOAD = "workload"  # reviews-v1 (one box per Deployment)
    SERVICE = "service"  # reviews.bookinfo (one box per service called)


GROUPINGS = tuple(Grouping)

# A line into a destination whose route injects a fault (issue 21), and one whose fault is
# past the end meshtop set for it (still injected until removed): a test, not an outage.
FAULT, EXPIRED = "fault", "expired"
FAULTED = {FAULT: "↯", EXPIRED: "↯✗"}  # how each is marked, readable without colour

# The glyph before a node's name for a kind outside Kubernetes, so that it reads without
# colour: a VM (a WorkloadEntry's workload), a host a ServiceEntry declares.
GLYPHS = {NodeKind.VM: "▣", NodeKind.SERVICE_ENTRY: "◇"}


@dataclass(frozen=True, slots=True)
class ViewNode:
    id: str
    label: str
    namespace: str
    kind: NodeKind
    members: tuple[str, ...]  # snapshot node ids it stands for
    health: Health = Health.IDLE  # the worst of its members'
    cluster: str = ""  # "" for a peer outside every cluster (unknown, external)


@dataclass(frozen=True, slots=True)
class ViewEdge:
    """A line of the graph: one or several workload edges (`members`) drawn as one. Its
    `stats` are `merge_stats`'s: rates add up, but the error rate is the worst member's,
    so a failing call is never averaged away; `error_share` is the share of all its
    requests that failed, for totals. Its health is the worst member's."""

    source: str
    destination: str
    stats: EdgeStats
    members: tuple[tuple[str, str], ...]  # snapshot edges it stands for
    health: Health = Health.IDLE
    crosses: bool = False  # from one cluster to another
    error_share: float = 0.0  # failed requests / all its requests (weighted by traffic)
    fault: str = ""  # into a destination a route injects a fault into: FAULT or EXPIRED

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.destination)


@dataclass(frozen=True)
class GraphView:
    nodes: dict[str, ViewNode]
    edges: dict[tuple[str, str], ViewEdge]
    # the snapshot's own nodes and edges as graded for this view (with the console's
    # memory, if any): what a group's detail lists of its members
    grades: Grades = field(default_factory=lambda: Grades({}, {}))

    def topology(self) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
        return (frozenset(self.nodes), frozenset(self.edges))


def _weighted(values: Iterable[tuple[float, float]]) -> float:
    pairs = list(values)
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else 0.0


def error_share(stats: list[EdgeStats]) -> float:
    """The share of all the edges' requests that failed: their error rates weighted by
    traffic."""
    return _weighted((s.error_rate, s.rps) for s in stats)


def worst_error_rate(stats: list[EdgeStats]) -> float:
    """The highest error rate of the edges that carry requests (NaN if one is unknown)."""
    rates = [s.error_rate for s in stats if s.rps > 0]
    if not all(math.isfinite(r) for r in rates):
        return math.nan
    return max(rates, default=0.0)


def merge_stats(stats: list[EdgeStats]) -> EdgeStats:
    """Several edges drawn as one: rates add up; the error rate is the worst edge's
    (one failing version of four must not read as a quarter of its errors: the share of
    all the requests is `error_share`, and the response codes still add up); the mTLS
    share is weighted by traffic; latency quantiles cannot be added, so the slowest one
    stands (an upper bound, as a person reading the graph would want)."""
    return merged(stats)[0]


def merged(stats: Sequence[EdgeStats]) -> tuple[EdgeStats, float]:
    """`merge_stats` and `error_share` of the same edges, in one pass over them: what a
    refresh does for every line of a large mesh's view (6,035 lines of 51,239 calls at
    20,000 services). The same sums in the same order as theirs, so the same figures."""
    if len(stats) == 1:  # `error_share` of one edge: its sums from 0, as `sum` makes them
        s = stats[0]
        total = 0 + s.rps
        return s, (0 + s.error_rate * s.rps) / total if total else 0.0
    rps: float = 0
    request_bps: float = 0
    response_bps: float = 0
    connections: float = 0
    carried_by: float = 0  # the traffic that weighs the mTLS share
    secured: float = 0
    errors: float = 0  # error rates weighted by requests (`error_share`)
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    worst_rate: float | None = None  # of the edges that carry requests
    judged = True  # every one of those error rates a number
    protocols = {s.protocol for s in stats}
    several = any(map(_protocols, stats))  # an edge that says it carries several protocols
    codes: dict[str, float] = {}
    flags: dict[str, float] = {}
    statuses: dict[str, float] = {}
    isfinite = math.isfinite
    for s in stats:
        r = s.rps
        rps += r
        errors += s.error_rate * r
        w = r or s.tcp_connections_per_s
        carried_by += w
        secured += s.mtls * w
        request_bps += s.tcp_request_bps
        response_bps += s.tcp_response_bps
        connections += s.tcp_connections_per_s
        if r > 0:
            rate = s.error_rate
            if not isfinite(rate):
                judged = False
            elif worst_rate is None or rate > worst_rate:
                worst_rate = rate
        x = s.p50_ms
        if x is not None and isfinite(x) and (p50 is None or x > p50):
            p50 = x
        x = s.p95_ms
        if x is not None and isfinite(x) and (p95 is None or x > p95):
            p95 = x
        x = s.p99_ms
        if x is not None and isfinite(x) and (p99 is None or x > p99):
            p99 = x
        said = s.response_codes
        if said:
            for k, v in said.items():
                codes[k] = codes.get(k, 0.0) + v
        said = s.response_flags
        if said:
            for k, v in said.items():
                flags[k] = flags.get(k, 0.0) + v
        said = s.grpc_statuses
        if said:
            for k, v in said.items():
                statuses[k] = statuses.get(k, 0.0) + v
    mixed = len(protocols) > 1
    protocol = Protocol.HTTP if mixed else protocols.pop()
    carried: tuple[Protocol, ...] = ()
    if several or mixed:  # else each carries the one protocol: none said
        by_traffic = sorted(stats, key=lambda s: -(s.rps or s.tcp_connections_per_s))
        every = tuple(dict.fromkeys([protocol, *(p for s in by_traffic for p in s.carried)]))
        carried = every if len(every) > 1 else ()
    # `EdgeStats(...)` of these, without its frozen `__init__` (see `EdgeStatsDraft`)
    line = EdgeStatsDraft()
    line.protocol = protocol
    line.protocols = carried
    line.rps = rps
    line.error_rate = math.nan if not judged else 0.0 if worst_rate is None else worst_rate
    line.p50_ms = p50
    line.p95_ms = p95
    line.p99_ms = p99
    line.mtls = secured / carried_by if carried_by else 0.0
    line.response_codes = codes
    line.response_flags = flags
    line.grpc_statuses = statuses
    line.tcp_request_bps = request_bps
    line.tcp_response_bps = response_bps
    line.tcp_connections_per_s = connections
    line.__class__ = EdgeStats  # type: ignore[assignment]
    return line, errors / rps if rps else 0.0  # type: ignore[return-value]


_protocols = attrgetter("protocols")
_FILLED = (
    "protocol", "protocols", "rps", "error_rate", "p50_ms", "p95_ms", "p99_ms", "mtls",
    "response_codes", "response_flags", "grpc_statuses", "tcp_request_bps",
    "tcp_response_bps", "tcp_connections_per_s",
)  # fmt: skip
if sorted(EdgeStats.__slots__) != sorted(_FILLED):
    raise ImportError("meshtop.graphview.merged fills every field of EdgeStats: name the new ones")
_LINE = ("source", "destination", "stats", "members", "health", "crosses", "error_share", "fault")
if sorted(ViewEdge.__slots__) != sorted(_LINE):
    raise ImportError("meshtop.graphview.build fills every field of ViewEdge: name the new ones")


class _Line:
    """`ViewEdge`'s slots, unfrozen: `build` fills one in for each line, then makes it the
    `ViewEdge` the same slots allow (as `merged` makes its `EdgeStats`)."""

    __slots__ = ViewEdge.__slots__
    source: str
    destination: str
    stats: EdgeStats
    members: tuple[tuple[str, str], ...]
    health: Health
    crosses: bool
    error_share: float
    fault: str


def _group_of(w: Workload, grouping: Grouping) -> tuple[str, str]:
    """(view node id, label) for a snapshot node under a grouping; a node the telemetry
    named only in part says so (`10.1.2.3 (IP)`, `unknown (no route)`)."""
    if not w.clustered:
        return w.id, marked(w.mark, w.label)
    app = w.app or w.name
    base = f"{w.cluster}/{w.namespace}"
    if grouping is Grouping.WORKLOAD or w.kind is NodeKind.SERVICE:
        name = w.name if w.is_workload else w.name.removeprefix("service:")
        return w.id, marked(w.mark, name)
    if grouping is Grouping.APP:
        return f"{base}/app:{app}", app
    if grouping is Grouping.SERVICE:
        return f"{base}/service:{app}", f"{app}.{w.namespace}"
    version = w.version
    return (
        (f"{base}/app:{app}:{version}", f"{app} {version}")
        if version
        else (
            f"{base}/app:{app}",
            app,
        )
    )


@dataclass
class ViewOptions:
    grouping: Grouping = Grouping.VERSIONED_APP
    collapsed: set[str] = field(default_factory=set)  # namespaces drawn as one box
    collapsed_clusters: set[str] = field(default_factory=set)  # clusters drawn as one box
    cluster: str = ""  # only this cluster's nodes, and what they call or are called by
    filter: str = ""
    focus: tuple[tuple[str, ...], int] | None = None  # (nodes, hops)
    thresholds: Thresholds = DEFAULT_THRESHOLDS


GRADED_KEPT = 4  # snapshots whose grades are kept: the last few, never their edges
_graded: OrderedDict[
    tuple[int, Thresholds, int], tuple[weakref.ref[MeshSnapshot], HealthMemory | None, Grades]
] = OrderedDict()
_graded_lock = threading.Lock()


def grades_of(
    snapshot: MeshSnapshot, thresholds: Thresholds, memory: HealthMemory | None = None
) -> Grades:
    """A snapshot's grades (with the console's `memory`, or afresh), worked out once: the
    views built again for a key (a filter, a grouping, a collapse, a zoom level) and the
    edge table read them instead of grading every edge again. Shared: never changed."""
    key = (id(snapshot), thresholds, id(memory))
    with _graded_lock:
        kept = _graded.get(key)
        if kept is not None and kept[0]() is snapshot and kept[1] is memory:
            _graded.move_to_end(key)
            return kept[2]
    grades = grade(snapshot, thresholds) if memory is None else memory.grade(snapshot, thresholds)
    with _graded_lock:
        _graded[key] = (weakref.ref(snapshot), memory, grades)
        while len(_graded) > GRADED_KEPT:
            _graded.popitem(last=False)
    return grades


def build(
    snapshot: MeshSnapshot, options: ViewOptions, memory: HealthMemory | None = None
) -> GraphView:
    """The graph to draw for `snapshot` under `options`. Health never hides a failure: a
    line is as healthy as its worst workload edge, and a box as its worst workload
    (each as healthy as the requests it answers, so a failing call inside a collapsed
    namespace or between an app's versions fails the box). With the console's
    `memory`, the workload edges' health keeps from flapping across refreshes
    (`HealthMemory`); without it, each snapshot is graded afresh. What the view is made
    of (its boxes, which calls each line draws) is worked out once for a topology and
    its options (`_shape`): a refresh of the same mesh only adds up its figures."""
    give_way()  # a key's work on the screen's thread goes first
    grades = grades_of(snapshot, options.thresholds, memory)
    shape = _shape(snapshot, options)
    edge_grades, node_grades = grades.edges, grades.nodes
    every = list(map(_stats, snapshot.edges))
    edges: dict[tuple[str, str], ViewEdge] = {}
    ranks = grades.ranks
    for key, at, members, crosses, fault, take in giving_way(shape.edges, 64):
        # a line's calls' figures and grades taken by place, in one call (`take`)
        line, share = merged(take(every) if take is not None else (every[at[0]],))
        health = (
            worst(map(edge_grades.__getitem__, members))
            if ranks is None
            else BY_SEVERITY[max(take(ranks)) if take is not None else ranks[at[0]]]
        )
        # `ViewEdge(...)`, without its frozen `__init__` (2.2 us a line; see `EdgeStatsDraft`)
        drawn = _Line()
        drawn.source, drawn.destination = key
        drawn.stats, drawn.members, drawn.health = line, members, health
        drawn.crosses, drawn.error_share, drawn.fault = crosses, share, fault
        drawn.__class__ = ViewEdge  # type: ignore[assignment]
        edges[key] = drawn  # type: ignore[assignment]
    nodes = {
        v: ViewNode(
            v, label, ns, kind, members, worst(map(node_grades.__getitem__, members)), cluster
        )
        for v, label, ns, kind, members, cluster in giving_way(shape.nodes)
    }
    view = GraphView(nodes, edges, grades)
    if options.cluster:
        view = in_cluster(view, options.cluster)
    if options.filter:
        view = apply_filter(view, options.filter)
    if options.focus is not None:
        view = focus(view, *options.focus)
    return view


# a line: its key, where its calls are in the snapshot's edges, their keys, whether it
# crosses clusters, its fault mark, and (for more than one call) what takes its calls'
# items from a list of every edge's, by place
ShapeEdge = tuple[
    tuple[str, str], tuple[int, ...], tuple[tuple[str, str], ...], bool, str,
    Callable[[Sequence[Any]], tuple[Any, ...]] | None,
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Shape:
    """What a view of a snapshot is made of, whatever its figures: each box (id, label,
    namespace, kind, members, cluster) and each line (its key, the places in the
    snapshot's edges of the calls it draws, their keys, whether it crosses clusters, its
    fault mark), in the order `build` makes them."""

    nodes: tuple[tuple[str, str, str, NodeKind, tuple[str, ...], str], ...]
    edges: tuple[ShapeEdge, ...]


def _make_shape(snapshot: MeshSnapshot, options: ViewOptions, faults: dict[str, str]) -> Shape:
    node_of: dict[str, tuple[str, str]] = {}
    for node_id, w in snapshot.nodes.items():
        if w.cluster in options.collapsed_clusters and w.clustered:
            node_of[node_id] = (f"{w.cluster}/*/*", f"{w.cluster} (all)")
        elif w.namespace in options.collapsed and w.kind is not NodeKind.UNKNOWN:
            node_of[node_id] = (f"{w.cluster}/{w.namespace}/*", f"{w.namespace} (all)")
        else:
            node_of[node_id] = _group_of(w, options.grouping)
    members: dict[str, list[str]] = defaultdict(list)
    labels: dict[str, str] = {}
    namespaces: dict[str, str] = {}
    kinds: dict[str, NodeKind] = {}
    clusters: dict[str, str] = {}
    for node_id, (view_id, label) in node_of.items():
        w = snapshot.nodes[node_id]
        members[view_id].append(node_id)
        labels[view_id] = label
        collapsed = view_id.endswith("/*/*")
        namespaces[view_id] = "*" if collapsed else w.namespace
        # a group of VMs and Kubernetes workloads (an app moving) is a workload
        kinds[view_id] = w.kind if kinds.get(view_id, w.kind) is w.kind else NodeKind.WORKLOAD
        clusters[view_id] = w.cluster if w.clustered else ""
    into: dict[str, list[Edge]] = defaultdict(list)  # the calls into a faulted node
    for e in snapshot.edges if faults else ():
        if e.destination in faults:
            into[e.destination].append(e)
    grouped: dict[tuple[str, str], list[int]] = defaultdict(list)
    snapshot_edges = snapshot.edges
    for i, e in enumerate(snapshot_edges):
        a, b = node_of[e.source][0], node_of[e.destination][0]
        if a != b:  # calls inside one collapsed box or one app are not drawn
            grouped[(a, b)].append(i)
    edges: list[ShapeEdge] = []
    for key, at in grouped.items():
        es = [snapshot_edges[i] for i in at]
        a, b = clusters[key[0]], clusters[key[1]]
        edges.append((key, tuple(at), tuple(e.key for e in es), bool(a and b and a != b),
                      _fault_of(faults, es), itemgetter(*at) if len(at) > 1 else None))  # fmt: skip
    for v, kind in kinds.items():
        if kind in GLYPHS and not v.endswith("/*"):  # not a collapsed namespace or cluster
            labels[v] = f"{GLYPHS[kind]} {labels[v]}"
    for v in (v for v in members if faults and v.endswith("/*")):
        # a collapsed namespace or cluster holds the lines into a faulted callee: its box
        # says so instead
        held = _fault_of(faults, [e for m in members[v] for e in into.get(m, ())])
        if held:
            labels[v] = f"{labels[v]} {FAULTED[held]}"
    nodes = tuple(
        (v, labels[v], namespaces[v], kinds[v], tuple(sorted(members[v])), clusters[v])
        for v in members
    )
    return Shape(nodes, tuple(edges))


SHAPES_KEPT = 16  # per topology: the views' options whose shape is kept


@dataclass
class Topology:
    """A snapshot's nodes and the ends of its edges, in order: while a refresh's are the
    same, so is the shape of each of its views (`Shape`, kept by options)."""

    nodes: Mapping[str, Workload]  # the first such snapshot's, in its order
    sources: list[str]
    destinations: list[str]
    shapes: OrderedDict[tuple[object, ...], Shape] = field(default_factory=OrderedDict)


_stats = attrgetter("stats")
_topologies: OrderedDict[int, tuple[weakref.ref[MeshSnapshot], Topology]] = OrderedDict()
_topology_lock = threading.Lock()


def topology_of(snapshot: MeshSnapshot) -> Topology:
    """The snapshot's topology: the last one's, kept, when its nodes and edges' ends are
    the same (a refresh of the same mesh), else its own."""
    with _topology_lock:
        kept = _topologies.get(id(snapshot))
        if kept is not None and kept[0]() is snapshot:
            return kept[1]
        last = next(reversed(_topologies.values()), None)
    nodes = snapshot.nodes
    sources, destinations = snapshot.ends
    topology = last[1] if last is not None else None
    if topology is None or not (
        (topology.sources, topology.destinations) == (sources, destinations)
        and (nodes is topology.nodes or _same_nodes(nodes, topology.nodes))
    ):
        topology = Topology(nodes, sources, destinations)
    with _topology_lock:
        _topologies[id(snapshot)] = (weakref.ref(snapshot), topology)
        while len(_topologies) > GRADED_KEPT:
            _topologies.popitem(last=False)
    return topology


def _same_nodes(a: Mapping[str, Workload], b: Mapping[str, Workload]) -> bool:
    """The same nodes, each the same workload, in the same order."""
    return len(a) == len(b) and a == b and all(map(eq, a, b))


def _shape(snapshot: MeshSnapshot, options: ViewOptions) -> Shape:
    """The shape of the view of `snapshot` under `options` (before its cluster, filter
    and focus), worked out once for its topology, options and fault marks."""
    faults = fault_marks(snapshot)
    topology = topology_of(snapshot)
    key = (
        options.grouping,
        frozenset(options.collapsed),
        frozenset(options.collapsed_clusters),
        tuple(sorted(faults.items())),
    )
    with _topology_lock:
        shape = topology.shapes.get(key)
        if shape is not None:
            topology.shapes.move_to_end(key)
            return shape
    shape = _make_shape(snapshot, options, faults)
    with _topology_lock:
        topology.shapes[key] = shape
        while len(topology.shapes) > SHAPES_KEPT:
            topology.shapes.popitem(last=False)
    return shape


def fault_marks(snapshot: MeshSnapshot) -> dict[str, str]:
    """The nodes a route injects a fault into (its rule's destinations: the host's app in
    its namespace, the subset's version), each FAULT, or EXPIRED when meshtop's end for
    the fault has passed (Istio still injects it: flagged until it is removed). Nothing
    to do, and nothing asked of the nodes, while no route injects one."""
    marks: dict[tuple[str, str, str, str], str] = {}  # cluster, namespace, app, version
    for route in snapshot.routes:
        if not any(rule.policy.fault for rule in route.rules):
            continue
        ended = route.fault_expires is not None and snapshot.generated_at >= route.fault_expires
        for rule in route.rules:
            if rule.policy.fault is None:
                continue
            for d in rule.destinations:
                app, _, rest = d.host.partition(".")
                namespace = rest.split(".")[0] if rest else route.namespace
                key = (route.cluster, namespace, app, d.subset)
                marks[key] = EXPIRED if ended or marks.get(key) == EXPIRED else FAULT
    if not marks:
        return {}
    # over several clusters, a copy marks its own cluster's nodes; a mesh of one names
    # its routes' cluster as its API does, which its nodes may not
    several = len({r.cluster for r in snapshot.routes}) > 1
    out: dict[str, str] = {}
    for node_id, w in snapshot.nodes.items():
        # a service's node (the calls an abort answers before any workload) takes every
        # subset's fault
        service = w.kind is NodeKind.SERVICE
        name = w.name.removeprefix(SERVICE_PREFIX) if service else w.app
        if not name:
            continue
        found = {
            mark
            for (cluster, namespace, app, subset), mark in marks.items()
            if (namespace, app) == (w.namespace, name)
            and (service or subset in ("", w.version))
            and (not several or cluster == w.cluster)
        }
        if found:
            out[node_id] = EXPIRED if EXPIRED in found else FAULT
    return out


def _fault_of(faults: dict[str, str], edges: list[Edge]) -> str:
    """A line's fault mark: EXPIRED if any of its calls goes into an expired fault."""
    if not faults:
        return ""
    found = {faults.get(e.destination, "") for e in edges}
    return EXPIRED if EXPIRED in found else FAULT if FAULT in found else ""


def in_cluster(view: GraphView, cluster: str) -> GraphView:
    """A cluster's nodes, the calls from and to them, and the nodes at the other ends
    (in other clusters, or outside every cluster)."""
    if not any(v.cluster == cluster for v in view.nodes.values()):
        known = sorted({v.cluster for v in view.nodes.values() if v.cluster})
        raise UsageError(f"no cluster {cluster!r} in the graph; there are {', '.join(known)}")
    mine = {n for n, v in view.nodes.items() if v.cluster == cluster}
    edges = {k for k in view.edges if k[0] in mine or k[1] in mine}
    return _drop_idle(view, mine | {x for k in edges for x in k}, edges)


def _drop_idle(
    view: GraphView, keep_nodes: set[str], keep_edges: set[tuple[str, str]]
) -> GraphView:
    return GraphView(
        {n: v for n, v in view.nodes.items() if n in keep_nodes},
        {k: e for k, e in view.edges.items() if k in keep_edges},
        view.grades,
    )


_CONDITION = re.compile(r"^(error|errors|rps|p50|p95|p99|mtls)\s*(>=|<=|=|>|<)\s*(\S+)$")


def _number(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text.removesuffix("ms"))
    except ValueError:
        raise UsageError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{text!r} is not a number")
    return value


def _edge_test(field_name: str, op: str, value: str) -> Callable[[ViewEdge], bool]:
    if field_name == "mtls":
        if value.lower() not in ("true", "false", "yes", "no"):
            raise UsageError("mtls takes true or false")
        want = value.lower() in ("true", "yes")
        return lambda e: (e.stats.mtls >= 1.0) == want
    getter: Callable[[ViewEdge], float] = {
        "error": lambda e: e.stats.error_rate,
        "errors": lambda e: e.stats.error_rate,
        "rps": lambda e: e.stats.rps,
        "p50": lambda e: e.stats.p50_ms or 0.0,
        "p95": lambda e: e.stats.p95_ms or 0.0,
        "p99": lambda e: e.stats.p99_ms or 0.0,
    }[field_name]
    n = _number(value)
    compare: Callable[[float], bool] = {
        ">": lambda a: a > n,
        "<": lambda a: a < n,
        ">=": lambda a: a >= n,
        "<=": lambda a: a <= n,
        "=": lambda a: a == n,
    }[op]
    return lambda e: compare(getter(e))


_FIELD = re.compile(r"^(error|errors|rps|p50|p95|p99|mtls)\s*[<>=]", re.IGNORECASE)


def apply_filter(view: GraphView, text: str) -> GraphView:
    """k9s-style: words are ANDed. A word is a condition on edges (`error>1%`, `rps>10`,
    `p99>200`, `mtls=false`), a namespace (`ns=shop`), or text found in node names (no
    regular expressions: a pattern typed in a hurry must not hang the console); `!`
    before a word inverts it. Node words keep the matching nodes and their calls; edge
    words keep the matching calls and the nodes at their ends; `!` node words remove."""
    edge_tests: list[Callable[[ViewEdge], bool]] = []
    node_tests: list[Callable[[ViewNode], bool]] = []
    removed: list[Callable[[ViewNode], bool]] = []
    for raw in text.split():
        invert = raw.startswith("!")
        word = raw.removeprefix("!")
        if not word:
            continue
        cond = _CONDITION.match(word.lower())
        if cond:
            test = _edge_test(*cond.groups())
            edge_tests.append(lambda e, t=test, inv=invert: t(e) != inv)  # type: ignore[misc]
            continue
        if _FIELD.match(word):
            raise UsageError(f"{word!r} is not a condition such as error>1%, rps>10, mtls=false")
        if word.startswith(("ns=", "namespace=")):
            ns = word.split("=", 1)[1]
            match: Callable[[ViewNode], bool] = lambda v, ns=ns: v.namespace == ns  # type: ignore[misc]  # noqa: E731
        else:
            needle = word.lower()
            match = lambda v, n=needle: n in v.label.lower() or n in v.id.lower()  # type: ignore[misc]  # noqa: E731
        (removed if invert else node_tests).append(match)
    edges = {k for k, e in view.edges.items() if all(t(e) for t in edge_tests)}
    keep = set(view.nodes)
    if node_tests:
        keep = {n for n, v in view.nodes.items() if all(t(v) for t in node_tests)}
        edges = {k for k in edges if k[0] in keep or k[1] in keep}
    if edge_tests:
        keep = set()
    keep |= {x for k in edges for x in k}
    keep -= {n for n, v in view.nodes.items() if any(t(v) for t in removed)}
    edges = {k for k in edges if k[0] in keep and k[1] in keep}
    return _drop_idle(view, keep, edges)


def focus(view: GraphView, nodes: tuple[str, ...], hops: int) -> GraphView:
    """The nodes within `hops` calls of any of `nodes`, either way, and the edges among them."""
    missing = [n for n in nodes if n not in view.nodes]
    if missing or not nodes:
        raise UsageError(f"no node {missing[0] if missing else ''!r} in the graph")
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(view.nodes)
    g.add_edges_from(view.edges)
    near: set[str] = set()
    for node in nodes:
        near |= set(nx.single_source_shortest_path_length(g, node, cutoff=hops))
    return _drop_idle(view, near, {k for k in view.edges if k[0] in near and k[1] in near})


def resolve(view: GraphView, text: str) -> tuple[str, ...]:
    """The view nodes `text` names: an id, a label (`reviews v3`), an app whose versions
    are drawn apart (`reviews`: all its versions), or an unambiguous end of an id."""
    if text in view.nodes:
        return (text,)
    exact = [n for n, v in view.nodes.items() if v.label == text]
    if exact:
        return tuple(sorted(exact))
    versions = [n for n, v in view.nodes.items() if v.label.startswith(text + " ")]
    if versions:
        return tuple(sorted(versions))
    found = [n for n in view.nodes if n.endswith(text)]
    if len(found) == 1:
        return (found[0],)
    if not found:
        raise UsageError(f"no node {text!r} in the graph")
    raise UsageError(f"{text!r} is ambiguous: {', '.join(sorted(found)[:4])}")
