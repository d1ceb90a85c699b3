"""What an edge's or a node's detail is about and what it asks the metrics source for:
the history of the edges (or the node) it stands for, and, where the destination app
runs several versions, each version's, for the canary comparison; and, for a box that
stands for several workloads, which of them (and of their calls) make it unhealthy.
And the weight changes the audit log says were applied to the routes that send to it,
and when the control plane says those routes or its Deployments last changed, to mark on
the charts. Headless: the console's detail screens and `meshtop edge` both
fetch through here.
Over 400 lines: what a detail shows and where it is fetched from change together for the
console and `meshtop edge` alike (the posture's authorization and the markers included)."""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from meshtop import audit, units
from meshtop.errors import MeshtopError
from meshtop.federation import distinct
from meshtop.health import Grades, worst
from meshtop.history import merge
from meshtop.model import (
    SERVICE_PREFIX,
    Edge,
    EdgeStats,
    Health,
    History,
    MeshSnapshot,
    NodeKind,
    Route,
    Workload,
)
from meshtop.posture import Decision, SecurityConfig, verdict_on
from meshtop.sources.protocols import (
    ChangeSource,
    ConfigChange,
    MetricsSource,
    Pair,
    SecuritySource,
    histories_of,
)
from meshtop.sources.security import read_configs


@dataclass(frozen=True, slots=True)
class Subject:
    """An edge (from `sources` to `destinations`) or, with no sources, a node."""

    title: str
    sources: tuple[str, ...]  # snapshot node ids; empty for a node
    destinations: tuple[str, ...]
    # A node that answers nothing (a gateway, a client): its history is what it calls.
    outbound: bool = False
    # The destination's app and its versions, when it runs several: version -> node ids.
    app: str = ""
    versions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The routes that send to its destinations, as the audit log names them.
    routes: tuple[str, ...] = ()
    # An edge's calls in the snapshot and the nodes at their ends: what authorization
    # is judged on (`authorization`).
    calls: tuple[Edge, ...] = ()
    ends: tuple[Workload, ...] = ()

    @property
    def is_edge(self) -> bool:
        return bool(self.sources)

    def pairs(self, destinations: Sequence[str] | None = None) -> list[Pair]:
        ends = self.destinations if destinations is None else destinations
        if self.outbound:
            return [(d, None) for d in ends]
        if not self.sources:
            return [(None, d) for d in ends]
        return [(s, d) for s in self.sources for d in ends]


def versions_of(
    snapshot: MeshSnapshot, node_ids: Sequence[str]
) -> tuple[str, Sequence[tuple[str, tuple[str, ...]]]]:
    """The app the nodes run and every version of it in their namespace, when there are
    at least two (a canary to compare); else `("", ())`."""
    nodes = [snapshot.nodes[n] for n in node_ids if n in snapshot.nodes]
    apps = {(w.cluster, w.namespace, w.app) for w in nodes if w.kind is NodeKind.WORKLOAD and w.app}
    if len(apps) != 1:
        return "", ()
    cluster, namespace, app = apps.pop()
    by_version: dict[str, list[str]] = {}
    for w in snapshot.nodes.values():
        same = (w.cluster, w.namespace, w.app) == (cluster, namespace, app)
        if same and w.kind is NodeKind.WORKLOAD and w.version:
            by_version.setdefault(w.version, []).append(w.id)
    if len(by_version) < 2:
        return "", ()
    return app, tuple((v, tuple(sorted(ids))) for v, ids in sorted(by_version.items()))


def subject(
    snapshot: MeshSnapshot,
    title: str,
    sources: Sequence[str],
    destinations: Sequence[str],
    *,
    outbound: bool = False,
) -> Subject:
    app, versions = versions_of(snapshot, destinations)
    routes = dict.fromkeys(
        f"{r.kind} {r.namespace}/{r.name}" for r in routes_to(snapshot, destinations)
    )
    calls = tuple(
        e for s in sources for d in destinations if (e := snapshot.edge(s, d)) is not None
    )
    ends = tuple(snapshot.nodes[n] for n in dict.fromkeys([*sources, *destinations])
                 if n in snapshot.nodes)  # fmt: skip
    return Subject(title, tuple(sources), tuple(destinations), outbound, app, tuple(versions),
                   tuple(routes), calls, ends)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Detail:
    history: History
    canary: tuple[tuple[str, History], ...]  # version -> its history, same window
    # the weight changes applied to its routes within the window, oldest first
    changes: tuple[audit.WeightChange, ...] = ()
    unread: str = ""  # why the audit log could not be read, if it could not
    # when the control plane says its routes or Deployments changed within the window
    config: tuple[ConfigChange, ...] = ()
    config_unread: str = ""  # why a control plane could not say, if one could not


SAME_CHANGE_S = 5.0  # meshtop's own write, in the audit log and in the managed fields


def config_in(
    resources: Sequence[str],
    start: float,
    end: float,
    found: Sequence[ConfigChange],
    audited: Sequence[audit.WeightChange] = (),
) -> tuple[ConfigChange, ...]:
    """The control plane's changes to `resources` (`VirtualService ns/name`,
    `Deployment ns/name`) from `start` to `end`, oldest first; one meshtop wrote that the
    audit log already has (`audited`) is left out: it is marked once."""
    wanted = set(resources)
    return tuple(
        sorted(
            (
                c
                for c in found
                if c.resource in wanted
                and start <= c.time <= end
                and not any(
                    a.resource == c.resource and abs(a.time - c.time) <= SAME_CHANGE_S
                    for a in audited
                )
            ),
            key=lambda c: c.time,
        )
    )


def change_sources(planes: Mapping[str, object]) -> list[ChangeSource]:
    """Of each cluster's control plane (by cluster name), each distinct one that says
    when its routes and Deployments changed."""
    return [p for p in distinct(dict(planes)).values() if isinstance(p, ChangeSource)]


async def config_changes(
    planes: Sequence[ChangeSource],
) -> tuple[list[ConfigChange], str]:
    """What every control plane says changed, asked at once; why one could not say."""
    answers = await asyncio.gather(*(p.changes() for p in planes), return_exceptions=True)
    found = [c for a in answers if not isinstance(a, BaseException) for c in a]
    failed = [a for a in answers if isinstance(a, BaseException)]
    for a in failed:
        if not isinstance(a, MeshtopError):
            raise a
    return found, "; ".join(str(a) for a in failed)


def deployments(node_ids: Sequence[str]) -> list[str]:
    """The Deployments behind the nodes, as `config_in` names them."""
    return [f"Deployment {n.split('/', 1)[-1]}" for n in node_ids if n.count("/") == 2]


def changes_in(
    about: Subject, times: Sequence[float], log: Sequence[audit.WeightChange]
) -> tuple[audit.WeightChange, ...]:
    """The changes to the subject's routes from a step before the window's first point
    to its last (the first point's rate covers that step)."""
    if not times:
        return ()
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
    return tuple(
        c for c in log if c.resource in about.routes and times[0] - step <= c.time <= times[-1]
    )


async def fetch(
    metrics: MetricsSource,
    about: Subject,
    window_s: float,
    planes: Sequence[ChangeSource] = (),
) -> Detail:
    """Every history the detail shows, asked for at once; the audit log read beside them
    (on a thread: it is a file), and when the control planes (`planes`) say its routes
    and Deployments changed; a log that cannot be read, or a control plane that cannot
    say, said, not raised."""

    async def merged(groups: list[list[Pair]]) -> list[History]:
        """Each group's histories merged, every group's asked at once."""
        answers = iter(await histories_of(metrics, [p for g in groups for p in g], window_s))
        return [merge([next(answers) for _ in g]) for g in groups]

    groups = [about.pairs(), *(about.pairs(ids) for _, ids in about.versions)]
    said = asyncio.ensure_future(config_changes(planes))  # beside the histories
    try:
        history, *canary = await merged(groups)
    except BaseException:
        said.cancel()
        raise
    told, config_unread = await said
    found = tuple((v, h) for (v, _), h in zip(about.versions, canary, strict=True))
    marked = Detail(history, found, config_unread=config_unread)
    if about.routes:
        try:
            log = await asyncio.to_thread(audit.changes)
        except OSError as exc:
            why = f"cannot read the audit log {audit.path()} ({exc.strerror or exc})"
            marked = replace(marked, unread=why)
        else:
            marked = replace(marked, changes=changes_in(about, history.times, log))
    times = history.times
    if told and times:
        step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
        resources = [*about.routes, *deployments([*about.sources, *about.destinations])]
        within = config_in(resources, times[0] - step, times[-1], told, marked.changes)
        marked = replace(marked, config=within)
    return marked


NO_CONFIG = (
    "not known: no security configuration is read (it is read from each cluster's control "
    "plane: --context, or --kubeconfig)"
)


async def authorization(
    about: Subject, security: Mapping[str, SecuritySource], timeout_s: float
) -> tuple[str, ...]:
    """For an edge, which AuthorizationPolicy allows or denies its calls (`access`), from
    each cluster's security configuration, read at once, none waited for longer than
    `timeout_s`; nothing for a node."""
    if not about.is_edge:
        return ()
    configs, unread = await read_configs(security, timeout_s) if security else ({}, {})
    return access(about, configs, unread)


def access(
    about: Subject, configs: Mapping[str, SecurityConfig], unread: Mapping[str, str]
) -> tuple[str, ...]:
    """Which AuthorizationPolicy allows or denies the edge's calls, in words, a line per
    call (named when the edge stands for several), with the requests the proxies denied
    (403 with Envoy's RBAC flag) and their share; a call into no workload, or into a
    cluster whose configuration could not be read, says so."""
    if not configs:
        why = "; ".join(f"{c or 'the cluster'}: {w}" for c, w in unread.items())
        return (
            (f"not known: cannot read the security configuration: {why}",) if why else (NO_CONFIG,)
        )
    nodes = {w.id: w for w in about.ends}
    several = len(about.calls) > 1
    lines: list[str] = []
    for e in about.calls:
        named = f"{_label(nodes, e.source)} → {_label(nodes, e.destination)}: " if several else ""
        v = verdict_on(e, nodes, configs)
        target = nodes.get(e.destination)
        if v is None:
            if target is None or not target.is_workload:
                why = "no AuthorizationPolicy applies: the callee is not a workload"
            else:
                why = "not known: " + unread.get(
                    target.cluster, "its cluster's configuration is not read"
                )
            lines.append(named + why)
            continue
        lines.append(f"{named}{v.verdict.words}")
        forbidden = e.stats.response_codes.get("403", 0.0)
        if v.denied_rps:
            rps = e.stats.rps
            share = f", {units.percent(v.denied_rps / rps)} of its requests" if rps else ""
            lines.append(
                f"{named}observed: {units.rps(v.denied_rps)} denied (403, Envoy's RBAC flag){share}"
            )
        elif forbidden and v.verdict.decision is Decision.DENIED:
            lines.append(
                f"{named}observed: {units.rps(forbidden)} answered 403 (the telemetry carries "
                "no RBAC flag: the denial, or the application's own)"
            )
    return tuple(lines)


def _label(nodes: Mapping[str, Workload], node_id: str) -> str:
    w = nodes.get(node_id)
    return w.label if w is not None else node_id


def routes_to(snapshot: MeshSnapshot, node_ids: Sequence[str]) -> list[Route]:
    """The routes that send traffic to the nodes' service: a destination host that is
    the app's short name in the route's own namespace, or its name in the node's
    namespace from anywhere (`reviews`, `reviews.bookinfo.svc.cluster.local`); the
    copies in the nodes' own cluster first. Looked up in the routes' index by host (made
    once per snapshot's routes), not by reading every route for every node: a namespace's
    box of 324 workloads against 617 routes took 0.4 s to open (issue 17)."""
    index = _route_index(snapshot.routes)
    found: list[Route] = []
    for w in (snapshot.nodes[n] for n in node_ids if n in snapshot.nodes):
        name = w.app or w.name.removeprefix(SERVICE_PREFIX)
        # a short name means the route's own namespace; a longer one says which
        here = index.short.get((w.namespace, name), ())
        named = index.named.get(f"{name}.{w.namespace}", ())
        for at in sorted({*here, *named}):  # in the routes' order, as read
            route = snapshot.routes[at]
            if route not in found:
                found.append(route)
    # In a mesh of several clusters, each has its copy: the nodes' own cluster's first.
    home = {snapshot.nodes[n].cluster for n in node_ids if n in snapshot.nodes}
    return sorted(found, key=lambda r: r.cluster not in home)


@dataclass(frozen=True, slots=True)
class _RouteIndex:
    """Where each route sends, by host: `short` by (the route's namespace, a host as
    written), `named` by every host and each of its starts that ends before a dot
    (`reviews.bookinfo.svc` is found under `reviews.bookinfo`, as `startswith` would);
    each a list of positions in the snapshot's routes, in order."""

    short: dict[tuple[str, str], list[int]]
    named: dict[str, list[int]]


ROUTE_INDEXES_KEPT = 4  # a detail asks for its snapshot's several times; a refresh, anew
_route_indexes: OrderedDict[int, tuple[tuple[Route, ...], _RouteIndex]] = OrderedDict()
_route_indexes_lock = threading.Lock()


def _route_index(routes: tuple[Route, ...]) -> _RouteIndex:
    """The index of a snapshot's routes, made once for that tuple of routes (kept with
    it, so that its id is not another's while kept)."""
    with _route_indexes_lock:
        kept = _route_indexes.get(id(routes))
        if kept is not None and kept[0] is routes:
            _route_indexes.move_to_end(id(routes))
            return kept[1]
    short: dict[tuple[str, str], list[int]] = {}
    named: dict[str, list[int]] = {}
    for at, route in enumerate(routes):
        hosts = {d.host for rule in route.rules for d in rule.destinations}
        starts: set[str] = set()
        for host in hosts:
            short.setdefault((route.namespace, host), []).append(at)
            starts.add(host)
            starts.update(host[:i] for i, c in enumerate(host) if c == ".")
        for start in starts:
            named.setdefault(start, []).append(at)
    index = _RouteIndex(short, named)
    with _route_indexes_lock:
        _route_indexes[id(routes)] = (routes, index)
        while len(_route_indexes) > ROUTE_INDEXES_KEPT:
            _route_indexes.popitem(last=False)
    return index


@dataclass(frozen=True, slots=True)
class Trouble:
    """A member of a group (a workload), or a call of its members, as unhealthy as the
    group is."""

    what: str  # `reviews-v3`, or `productpage-v1 → reviews-v3` (`troubles` says how named)
    health: Health
    stats: EdgeStats  # the call's; for a workload, its worst call's
    call: bool  # a call, not a workload
    inside: bool = False  # a call from one member to another: not drawn in the graph
    via: str = ""  # for a workload, the call that makes it so


def calls_of(snapshot: MeshSnapshot, keys: Iterable[tuple[str, str]]) -> list[Edge]:
    """The snapshot's edges of these keys, in its order: read through once, each edge's key
    made only where its destination is one of theirs. A node's detail asks for its worst
    call's as it opens, most often on a snapshot it is the first to ask of: a mapping of
    every edge made for it (or the snapshot's index, made on first use) took 20 ms at
    20,000 services, this 3 (issue 17)."""
    wanted = set(keys)
    into = {d for _, d in wanted}
    return [e for e in snapshot.edges if e.destination in into and e.key in wanted]


def one_place(members: Sequence[str]) -> str | None:
    """`cluster/namespace`, where every one of these node ids is in that one; else None."""
    places = {m.rsplit("/", 1)[0] if m.count("/") == 2 else None for m in members}
    return places.pop() if len(places) == 1 else None


def troubles(snapshot: MeshSnapshot, grades: Grades, members: Sequence[str]) -> list[Trouble]:
    """What makes a group of workloads (an app's versions, a collapsed namespace or
    cluster) as unhealthy as it is: the member workloads at its health, each with the
    call that makes it so, then the calls to, from or among them at that health, worst
    error rate first; members of one namespace by name (the detail says it), others by
    label. Nothing for a group that is healthy or idle."""
    mine = set(members)
    level = worst(grades.nodes.get(m, Health.IDLE) for m in mine)
    if level not in (Health.FAILING, Health.DEGRADED):
        return []
    place = one_place(members)
    cluster = place.split("/", 1)[0] if place is not None else ""

    def name(node_id: str) -> str:
        w = snapshot.nodes.get(node_id)
        if w is None:
            return node_id
        if place is None:
            return w.label
        if node_id in mine:
            return w.name
        # a peer outside by its label where that cannot pass for a member's name (a
        # workload of the group's cluster), else whole: another cluster's, a host's
        return w.label if w.cluster == cluster and "/" in w.label else node_id

    def badness(s: EdgeStats) -> tuple[float, float]:
        return (math.inf if math.isnan(s.error_rate) else s.error_rate, s.rps)  # unknown first

    calls = [
        e
        for e in snapshot.edges
        if (e.source in mine or e.destination in mine) and grades.edges.get(e.key) is level
    ]
    # each member's calls at that level, by the end it is: a namespace's box has hundreds
    answers: dict[str, list[Edge]] = {}
    makes: dict[str, list[Edge]] = {}
    for e in calls:
        answers.setdefault(e.destination, []).append(e)
        makes.setdefault(e.source, []).append(e)
    found: list[Trouble] = []
    for m in sorted(mine):
        if grades.nodes.get(m) is not level:
            continue
        why = answers.get(m) or makes.get(m, [])
        if not why:
            continue
        e = max(why, key=lambda e: badness(e.stats))
        found.append(
            Trouble(name(m), level, e.stats, call=False,
                    via=f"{name(e.source)} → {name(e.destination)}")
        )  # fmt: skip
    for e in sorted(calls, key=lambda e: badness(e.stats), reverse=True):
        inside = e.source in mine and e.destination in mine
        found.append(
            Trouble(f"{name(e.source)} → {name(e.destination)}", level, e.stats, call=True,
                    inside=inside)
        )  # fmt: skip
    return found


# -- the configuration beside the flags it causes (issue 21) --------------------------------


@dataclass(frozen=True, slots=True)
class PolicyLine:
    """A line of an edge's traffic policy: `expired` for a fault past its end (shown in
    the error style), `heading` for the rule or DestinationRule the lines under it are of."""

    text: str
    expired: bool = False
    heading: bool = False


def _share(stats: EdgeStats | None, flag: str) -> str:
    """` · UT 3.10%`: the share of the edge's requests that carry an Envoy flag (several
    flags are written as one, comma-separated)."""
    if stats is None or not stats.rps:
        return ""
    rps = sum(v for f, v in stats.response_flags.items() if flag in f.split(","))
    return f" · {flag} {units.percent(rps / stats.rps)}"


def _roughly(seconds: float) -> str:
    """`45s`, `8m`, `3h`: how long ago or from now, as a person says it."""
    s = abs(seconds)
    if s < 90:
        return f"{s:.0f}s"
    if s < 90 * 60:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.0f}h"


def fault_words(fault_text: str, expires: datetime | None, now: datetime) -> PolicyLine:
    """`fault: abort 503 to 10% until 16:40 (in 8m)`, or `… EXPIRED 3m ago` once past
    the end meshtop set for it (Istio injects it until it is removed)."""
    said = f"fault: {fault_text}"
    if expires is None:
        return PolicyLine(f"{said} (no end set)")
    left = (expires - now).total_seconds()
    if left <= 0:
        return PolicyLine(f"{said} EXPIRED {_roughly(left)} ago", expired=True)
    at = expires.astimezone().strftime("%H:%M")
    return PolicyLine(f"{said} until {at} (in {_roughly(left)})")


def traffic_policy(
    snapshot: MeshSnapshot, destinations: Sequence[str], stats: EdgeStats | None, now: datetime
) -> tuple[PolicyLine, ...]:
    """What the routes and DestinationRules say of the calls into `destinations`, beside
    the flags it causes in `stats`: each rule that sends there, its timeout beside the
    p99 and `UT`, its retries beside `URX`, its fault (and its end) beside `FI`/`DI`;
    the destination's circuit breaker beside `UO` and `UH`."""
    nodes = [snapshot.nodes[n] for n in destinations if n in snapshot.nodes]
    # a service's node (the calls a route's abort answers) is every subset's
    service = any(w.kind is NodeKind.SERVICE for w in nodes)
    versions = {w.version for w in nodes}
    apps = {w.app or w.name.removeprefix(SERVICE_PREFIX) for w in nodes}
    lines: list[PolicyLine] = []
    seen: set[tuple[str, str, str]] = set()
    for route in routes_to(snapshot, destinations):
        if (route.kind, route.namespace, route.name) in seen:
            continue  # another cluster's copy: the nodes' own cluster's is first
        seen.add((route.kind, route.namespace, route.name))
        for i, rule in enumerate(route.rules):
            if not any(
                d.host.split(".")[0] in apps and (service or d.subset in ("", *versions))
                for d in rule.destinations
            ):
                continue
            matches = " and ".join(rule.matches) or "default"
            lines.append(
                PolicyLine(f"{route.kind} {route.namespace}/{route.name}, rule {i} ({matches}):",
                           heading=True)
            )  # fmt: skip
            p = rule.policy
            p99 = f" · p99 {units.ms(stats.p99_ms)}" if stats is not None else ""
            timeout = f"timeout {units.duration(p.timeout_s)}" if p.timeout_s else "no timeout"
            lines.append(PolicyLine(f"{timeout}{p99}{_share(stats, 'UT')}"))
            if p.retries is None:
                retries = "retries: Istio's default (2 attempts)"
            elif p.retries.attempts == 0:
                retries = "no retries"
            else:
                retries = f"retries {p.retries.words()}"
            lines.append(PolicyLine(f"{retries}{_share(stats, 'URX')}"))
            if p.fault is not None:
                f = fault_words(p.fault.words(), route.fault_expires, now)
                flags = _share(stats, "FI") if p.fault.abort_status is not None else ""
                flags += _share(stats, "DI") if p.fault.delay_s is not None else ""
                lines.append(replace(f, text=f.text + flags))
    breakers = [
        b
        for b in snapshot.breakers
        if any(
            b.host == (w.app or w.name.removeprefix(SERVICE_PREFIX)) and b.namespace == w.namespace
            and b.subset in ("", w.version) for w in nodes
        )
    ]  # fmt: skip
    # a subset's own policy replaces the host's for that subset
    own = [b for b in breakers if b.subset] or breakers
    flags = _share(stats, "UO") + _share(stats, "UH")
    for b in own:
        said = "; ".join(b.words()) or "no limits"
        lines.append(
            PolicyLine(f"circuit breaker (DestinationRule {b.namespace}/{b.name}, {b.target}): "
                       f"{said}{flags}")
        )  # fmt: skip
    if not own:
        lines.append(PolicyLine(f"no circuit breaker{flags}"))
    return tuple(lines)
