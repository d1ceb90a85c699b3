"""The simulated mesh behind meshtop's three source protocols. One `Simulation` owns the
mesh and the clock; its metrics, control plane and traces all see the same weights.
Over 400 lines: its metrics (traffic and history), control plane and traces share one
simulation's state and caches."""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from operator import is_
from typing import Any

from meshtop.canary import Plan
from meshtop.errors import BackendError, UsageError
from meshtop.federation import FederatedControlPlane
from meshtop.history import Answer, Points, history_step, point_times, summarize
from meshtop.model import (
    CircuitBreaker,
    Edge,
    History,
    Protocol,
    Route,
    Span,
    Trace,
    TraceQuery,
    TraceSummary,
    Workload,
    error_kind,
)
from meshtop.sim.objects import (
    DESTINATION_RULE,
    ROUTE_KINDS,
    ObjectKey,
    breakers_of,
    checked,
    patched,
    ref,
    route_of,
    served,
    subsets_of,
)
from meshtop.sim.security import SimSecurity, guarding
from meshtop.sim.topology import RouteKey, SimCall, SimMesh, SimWorkload
from meshtop.sim.traffic import (
    QUANTILES,
    Breakers,
    Keep,
    Shaping,
    SimEdge,
    Splits,
    choices,
    flows,
    latency_guess,
    mixture_quantile,
    policies_in_force,
)
from meshtop.sim.walk import live_traffic
from meshtop.sources.dialects import ISTIO
from meshtop.sources.protocols import ClusterSources, ConfigChange, Pair, Traffic
from meshtop.sources.routing import default_rule, json_patch
from meshtop.sources.tracing import matches
from meshtop.steering.plan import EditPlan


class Simulation:
    def __init__(self, mesh: SimMesh, clock: Callable[[], float] = time.time) -> None:
        self.mesh = mesh
        self.clock = clock
        # The routes as loaded, and every change since: traffic at any past moment is
        # the traffic of the routes then, so history is there from the start.
        self._loaded = dict(mesh.routes)
        self._changes: list[tuple[float, RouteKey, Route]] = []
        self._writers: list[str] = []  # who made each change: meshtop, or an operator
        self._rule_changes: list[ConfigChange] = []  # and each DestinationRule's
        # the circuit breakers as loaded, and after each DestinationRule's change
        self._breakers: list[tuple[float, Breakers]] = [(-math.inf, dict(mesh.breakers))]
        # How each call splits over its targets, per set of routes in force: the same for
        # every past moment between two changes.
        self._splits: dict[tuple[int, int], dict[SimCall, list[tuple[str, float]]]] = {}
        self._live_splits: Splits = {}  # and now, for as long as what they read holds
        self.metrics = SimMetrics(self)
        # One control plane per cluster, as a multi-primary mesh has: each holds its own
        # copy of every route.
        self.planes: dict[str, SimControlPlane] = (
            {"": SimControlPlane(self)}
            if len(mesh.clusters) == 1
            else {c: SimControlPlane(self, c) for c in mesh.clusters}
        )
        self.control_plane: SimControlPlane | FederatedControlPlane = (
            FederatedControlPlane(self.planes) if len(self.planes) > 1 else self.planes[""]
        )
        self.traces = SimTraces(self)
        # Each cluster's security configuration, which the traffic obeys (sim/security.py)
        self.security = {c: SimSecurity(mesh, clock, c or None) for c in self.planes}
        mesh.guard = guarding(self.security)

    @property
    def clusters(self) -> dict[str, ClusterSources]:
        """The simulated mesh by cluster: one metrics and one trace backend for all, a
        control plane (and route store) per cluster."""
        return {
            c: ClusterSources(self.metrics, plane, self.traces, plane, self.security[c])
            for c, plane in self.planes.items()
        }

    def flows(self, at: float | None = None, keep: Keep | None = None) -> list[SimEdge]:
        """The traffic now, or at an earlier moment `at` with the routes of then; only
        the edges `keep(source, destination)` wants, when given."""
        if at is None:
            return flows(self.mesh, self.clock(), keep=keep, kept=self._live_splits)
        epoch = sum(when <= at for when, _, _ in self._changes)
        splits = self._splits.setdefault((epoch, len(self._changes)), {})
        return flows(
            self.mesh, at, self.routes_at(at), keep=keep, splits=splits,
            breakers=self.breakers_at(at),
        )  # fmt: skip

    def breakers_at(self, t: float) -> Breakers:
        """The DestinationRules' circuit breakers in force at `t`."""
        return next(held for when, held in reversed(self._breakers) if when <= t)

    def routes_at(self, t: float) -> Mapping[RouteKey, Route]:
        if not self._changes or self._changes[-1][0] <= t:
            return self.mesh.routes
        routes = dict(self._loaded)
        for when, key, route in self._changes:
            if when > t:
                break
            routes[key] = route
        return routes

    def route(self, namespace: str, host: str, cluster: str | None = None) -> Route:
        """The route for `host`: the copy in `cluster`, or in the first cluster."""
        route = self.mesh.routes.get((cluster or self.mesh.clusters[0], namespace, host))
        if route is None:
            raise UsageError(f"no route for {host} in namespace {namespace}")
        return route

    def apply_patch(
        self,
        namespace: str,
        name: str,
        ops: Sequence[Mapping[str, Any]],
        dry_run: bool = False,
        cluster: str | None = None,
    ) -> Route:
        """A JSON patch of weights (`routing.json_patch`) to the route object, as the
        Kubernetes API applies one: every `test` must hold (else `ConflictError`, nothing
        changed); the resource version moves on; the route is what the object now says."""
        home = cluster or self.mesh.clusters[0]
        route = next(
            (
                r
                for r in self.mesh.routes.values()
                if (r.cluster, r.namespace, r.name) == (home, namespace, name)
            ),
            None,
        )
        if route is None:
            raise UsageError(f"no route {namespace}/{name} in the simulated mesh")
        key = (home, route.kind, namespace, name)
        written = self._patch(key, ops, dry_run, "meshtop")
        return route_of(written, home) if dry_run else self._route_now(key)

    def get(
        self, kind: str, namespace: str, name: str, cluster: str | None = None
    ) -> dict[str, Any]:
        """A VirtualService, HTTPRoute or DestinationRule as it is now, whole (a copy), in
        `cluster` (the first by default)."""
        return served(self._object((cluster or self.mesh.clusters[0], kind, namespace, name)))

    def edit(
        self, plan: EditPlan, dry_run: bool = False, cluster: str | None = None
    ) -> dict[str, Any]:
        """The plan's JSON patch, as the Kubernetes API applies it (`apply_patch`); with
        `dry_run` checked, not written. The object as written (or as it would be)."""
        key = (cluster or self.mesh.clusters[0], plan.kind, plan.namespace, plan.name)
        return self._patch(key, plan.json_patch(), dry_run, "meshtop")

    def _route_now(self, key: ObjectKey) -> Route:
        """The route a route object says now, as the traffic reads it."""
        cluster, _, namespace, _ = key
        route = route_of(self.mesh.objects[key], cluster)
        return self.mesh.routes[(cluster, namespace, route.hosts[0])] if route.hosts else route

    def _object(self, key: ObjectKey) -> dict[str, Any]:
        found = self.mesh.objects.get(key)
        if found is None:
            raise UsageError(f"no {ref(key)} in the simulated mesh")
        return found

    def _patch(
        self, key: ObjectKey, ops: Sequence[Mapping[str, Any]], dry_run: bool, by: str
    ) -> dict[str, Any]:
        """`ops` applied to the object as the API server applies a JSON patch: tested
        and checked first, then (unless `dry_run`) written, what it says derived again."""
        now = patched(self._object(key), ops, ref(key))
        checked(now, key[0])
        if not dry_run:
            self._write(key, now, by)
        return served(now)

    def _write(self, key: ObjectKey, obj: dict[str, Any], by: str) -> None:
        """Write an object, as the API server does (its resource version moves on, its
        generation too when its spec changed), and derive again what it says: a route
        for each of its hosts, or a DestinationRule's subsets and circuit breakers. The
        change is recorded, for the history and the change markers."""
        cluster, kind, namespace, name = key
        old = self.mesh.objects[key]
        meta, was = obj["metadata"], old["metadata"]
        meta["resourceVersion"] = str(int(was.get("resourceVersion") or "0") + 1)
        generation = int(was.get("generation") or 1)
        meta["generation"] = generation + (obj.get("spec") != old.get("spec"))
        self.mesh.objects[key] = obj
        when = self.clock()
        if kind in ROUTE_KINDS:
            route = route_of(obj, cluster)
            self.mesh.remember(route, obj)
            for host in route.hosts:
                self.mesh.routes[(cluster, namespace, host)] = route
                self._changes.append((when, (cluster, namespace, host), route))
                self._writers.append(by)
            return
        for k in [k for k in self.mesh.subsets if k[:2] == (namespace, _host(old))]:
            del self.mesh.subsets[k]
        self.mesh.subsets.update(subsets_of(obj))
        breakers = {
            k: v for k, v in self.mesh.breakers.items() if k != (cluster, namespace, _host(old))
        }
        for b in breakers_of(obj, cluster):
            breakers[(cluster, namespace, b.host)] = (
                *breakers.get((cluster, namespace, b.host), ()),
                b,
            )
        self.mesh.breakers = breakers
        self._breakers.append((when, breakers))
        self._rule_changes.append(
            ConfigChange(when, kind, cluster, namespace, name, meta["generation"], by)
        )

    def route_changes(self, cluster: str | None = None) -> list[ConfigChange]:
        """Every change made to a route since the simulation began (of one cluster's
        copies, when given), as a Kubernetes control plane says its last one: the
        generation it made (the routes as loaded are the first) and who made it."""
        made: dict[RouteKey, int] = {}
        out = []
        for (when, key, route), by in zip(self._changes, self._writers, strict=True):
            made[key] = made.get(key, 1) + 1
            if cluster is None or route.cluster == cluster:
                out.append(ConfigChange(when, route.kind, route.cluster, route.namespace,
                                        route.name, made[key], by))  # fmt: skip
        rules = [c for c in self._rule_changes if cluster is None or c.cluster == cluster]
        return sorted([*out, *rules], key=lambda c: c.time) if rules else out

    def set_weights(
        self, namespace: str, host: str, weights: Mapping[str, int], cluster: str | None = None
    ) -> Route:
        """Set the weights of a route's default rule by subset (or backend) name, as an
        operator's `kubectl apply` would, in one cluster (the first by default); the
        resource version moves on."""
        route = self.route(namespace, host, cluster)
        rule = default_rule(route)
        if rule is None:
            raise UsageError(f"route {route.name} has no rule without match conditions")
        names = {d.subset or d.host for d in rule.destinations}
        if any(w < 0 for w in weights.values()):
            raise UsageError("weights cannot be negative")
        unknown = set(weights) - names
        if unknown:
            raise UsageError(
                f"route {route.name} has no destination {', '.join(sorted(unknown))}; "
                f"it has {', '.join(sorted(names))}"
            )
        weighted = {d.subset or d.host: weights[d.subset or d.host]
                    for d in rule.destinations if (d.subset or d.host) in weights}  # fmt: skip
        if route.kind == "VirtualService":
            total = sum(weighted.get(d.subset or d.host, d.weight) for d in rule.destinations)
            if total != 100:
                raise UsageError(f"a VirtualService's weights must add up to 100, not {total}")
        key = (route.cluster, route.kind, route.namespace, route.name)
        obj = served(self._object(key))
        i = route.rules.index(rule)
        spec_rule = obj["spec"]["http" if route.kind == "VirtualService" else "rules"][i]
        targets = spec_rule["route" if route.kind == "VirtualService" else "backendRefs"]
        for d, target in zip(rule.destinations, targets, strict=True):
            if (d.subset or d.host) in weighted:
                target["weight"] = weighted[d.subset or d.host]
        self._write(key, obj, "kubectl")
        return self._route_now(key)


def _host(obj: Mapping[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("host", "")).split(".")[0]


def _node(w: SimWorkload) -> Workload:
    return w.workload


class SimMetrics:
    """Edge stats straight from the simulation's flows: now, or at the moment `at`
    (the traffic is a function of time, routed by the routes of that moment)."""

    def __init__(self, sim: Simulation, at: float | None = None) -> None:
        self._sim = sim
        self.at = at
        # one history worked out at a time, per event loop that asks
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._gates = weakref.WeakKeyDictionary()

    def moment(self, at: float | None) -> SimMetrics:
        """These metrics evaluated at `at` (None: now), as `PrometheusMetrics.moment`."""
        moved = SimMetrics(self._sim, at)
        moved._gates = self._gates  # still one history at a time
        return moved

    @property
    def name(self) -> str:
        return f"simulated ({self._sim.mesh.name})"

    async def traffic(self, window_s: float) -> Traffic:
        # worked out on a thread, as a real backend's answer is read and joined on one:
        # the console awaits it on the event loop that draws
        return await asyncio.to_thread(self._traffic)

    def _traffic(self) -> Traffic:
        sim = self._sim
        if self.at is None:  # now: the walk planned once, the moment's figures each time
            t = sim.clock()
            # what each cluster's security decides a call's guard from at `t`: while it
            # is the same, so is each call's guard (SimSecurity.guard)
            decided = tuple((s.policies(t), s.rules(t), s.grants(t)) for s in sim.security.values())
            edges, nodes = live_traffic(sim.mesh, t, sim._live_splits, decided)
            return Traffic(nodes=nodes, edges=edges)
        edges = [
            Edge(e.source.id, e.destination.id, e.stats(), e.service_fqdn)
            for e in sim.flows(at=self.at)
        ]
        used = {n for e in edges for n in e.key}
        return Traffic(nodes=[self._sim.mesh.node(n).workload for n in sorted(used)], edges=edges)

    async def history(
        self, source: str | None, destination: str | None, window_s: float
    ) -> History:
        """What Prometheus would answer for the simulated mesh: the same points, the
        traffic at each with the routes of that moment, a gap where an edge had none."""
        return (await self.histories([(source, destination)], window_s))[0]

    async def histories(self, pairs: Sequence[Pair], window_s: float) -> list[History]:
        """`history` of each (source, destination) pair, from one walk of the mesh at
        each point for them all: a namespace's detail asks one for each of its members
        (255 at 20,000 services), and each walk is of the whole mesh (issue 17).
        Worked out on a thread: a large mesh's takes seconds, which the screen that
        awaits it on its event loop must not wait for; one at a time, so that several do
        not crowd the screen's thread out of the GIL; those of a screen closed meanwhile
        (their await cancelled) never start, and the one under way stops at its next
        point (a thread cannot be cancelled: told to stop, it stops itself)."""
        if not pairs:
            return []
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(1)
        async with gate:
            stop = threading.Event()
            try:
                return await asyncio.to_thread(self._histories, pairs, window_s, stop)
            except asyncio.CancelledError:
                stop.set()
                raise

    def _histories(
        self, pairs: Sequence[Pair], window_s: float, stop: threading.Event | None = None
    ) -> list[History]:
        end = float(math.floor(self._sim.clock() if self.at is None else self.at))
        step = history_step(window_s)
        times = point_times(end, window_s, step)
        share = 1.0 / len(times)
        points = [Points(times, step) for _ in pairs]
        # What the window sums up, kept small for the many points and pairs: each kind
        # of answer's rate added up (`summarize` adds them), and each edge's latency
        # without its answers (at 20,000 services a namespace's 324 histories at once
        # kept over a million objects for the collector's passes to read)
        answers: list[dict[Answer, float]] = [{} for _ in pairs]
        weighted: list[list[tuple[SimEdge, float]]] = [[] for _ in pairs]
        # the pairs each edge counts in, by its two ends, one end, or none (everything)
        wanted: dict[Pair, list[int]] = {}
        for k, pair in enumerate(pairs):
            wanted.setdefault(pair, []).append(k)

        def counted(caller: str, target: str) -> list[int]:
            return [
                *wanted.get((caller, target), ()),
                *wanted.get((None, target), ()),
                *wanted.get((caller, None), ()),
                *wanted.get((None, None), ()),
            ]

        def keep(caller: str, target: str) -> bool:
            return bool(counted(caller, target))

        for i, t in enumerate(times):
            if stop is not None and stop.is_set():
                raise asyncio.CancelledError  # nobody awaits it any more
            # each edge, and its latency kept for the window (one copy for every pair)
            here: list[list[tuple[SimEdge, SimEdge]]] = [[] for _ in pairs]
            for e in self._sim.flows(at=t, keep=keep):
                if e.protocol is not Protocol.TCP:
                    kept = (e, replace(e, outcomes=()))
                    for k in counted(e.source.id, e.destination.id):
                        here[k].append(kept)
            for k, edges in enumerate(here):
                for e, latency in edges:
                    for o in e.outcomes:
                        if o.arrived or e.source.sidecar:  # else no proxy saw it at all
                            points[k].add(i, error_kind(o.code, o.grpc_status), o.rps)
                    summed = answers[k]
                    for a in _answers(e, share):
                        if a.rps > 0 and math.isfinite(a.rps):  # as `summarize` counts
                            kind = replace(a, rps=0.0)
                            summed[kind] = summed.get(kind, 0.0) + a.rps
                    weighted[k].append((latency, e.rate))
                for q in QUANTILES:
                    ms = mixture_quantile([(e, e.rate) for e, _ in edges], q)
                    if ms is not None:
                        points[k].latency(i, q, ms)
        out = []
        for k, (source, destination) in enumerate(pairs):
            w = weighted[k]
            quantiles = {q: mixture_quantile(w, q) for q in QUANTILES} if w else {}
            said = [replace(a, rps=rps) for a, rps in answers[k].items()]
            summary = summarize(said, ISTIO.http_reporters, ISTIO.mtls_reporters, quantiles)
            out.append(points[k].history(source, destination, window_s, summary))
        return out


def _answers(e: SimEdge, share: float) -> list[Answer]:
    """What each proxy on the edge reports, as Istio's sidecars label it."""
    out: list[Answer] = []
    for reporter in e.reporters:
        on_server = reporter == "destination"
        principals = (e.source.principal, e.destination.principal) if e.mtls else ("", "")
        out.extend(
            Answer(
                edge=f"{e.source.id}>{e.destination.id}",
                reporter=reporter,
                rps=o.rps * share,
                code=o.code,
                grpc_status=o.grpc_status,
                flags=o.flags,
                kind=error_kind(o.code, o.grpc_status),
                secured=e.mtls if on_server else None,
                source_principal=principals[0],
                destination_principal=principals[1],
            )
            for o in e.outcomes
            if o.arrived or not on_server
        )
    return out


class SimControlPlane:
    """The simulated mesh's control plane; with `cluster`, one cluster's of several:
    its workloads and its copies of the routes."""

    def __init__(self, sim: Simulation, cluster: str | None = None) -> None:
        self._sim = sim
        self.cluster = cluster
        # What it said last, kept while what it was made of is the same (issue 17: 20,783
        # workloads and 617 DestinationRules read again each refresh, on the screen's
        # thread): the simulated workloads, each the same object, and the circuit
        # breakers the simulation derived last (a DestinationRule written derives them anew).
        self._workloads: tuple[list[SimWorkload], list[Workload]] | None = None
        self._breakers: tuple[object, list[CircuitBreaker]] | None = None

    @property
    def name(self) -> str:
        where = f" {self.cluster}" if self.cluster else ""
        return f"simulated{where} ({self._sim.mesh.name})"

    def _mine(self, cluster: str) -> bool:
        return self.cluster is None or cluster == self.cluster

    async def workloads(self) -> Sequence[Workload]:
        sims = self._sim.mesh.workloads.values()
        kept = self._workloads
        if kept is None or len(kept[0]) != len(sims) or not all(map(is_, kept[0], sims)):
            nodes = [_node(w) for w in sims if self._mine(w.workload.cluster)]
            kept = self._workloads = (list(sims), nodes)
        return list(kept[1])  # a copy: the caller's to keep

    async def routes(self) -> Sequence[Route]:
        return [r for r in dict.fromkeys(self._sim.mesh.routes.values()) if self._mine(r.cluster)]

    async def subsets(self) -> dict[tuple[str, str], set[str]]:
        """(namespace, host) -> the subsets its DestinationRules define."""
        out: dict[tuple[str, str], set[str]] = {}
        for namespace, host, subset in self._sim.mesh.subsets:
            out.setdefault((namespace, host.split(".")[0]), set()).add(subset)
        return out

    async def services(self) -> set[tuple[str, str]]:
        return set(self._sim.mesh.services)

    async def changes(self) -> Sequence[ConfigChange]:
        """Its routes' changes since the simulation began (`Simulation.route_changes`)."""
        return self._sim.route_changes(self.cluster)

    async def breakers(self) -> list[CircuitBreaker]:
        """Its DestinationRules' connection pools and outlier detection."""
        derived = self._sim.mesh.breakers  # a new mapping whenever a rule is written
        kept = self._breakers
        if kept is None or kept[0] is not derived:
            found = [
                b
                for (cluster, kind, _, _), obj in self._sim.mesh.objects.items()
                if kind == DESTINATION_RULE and self._mine(cluster)
                for b in breakers_of(obj, cluster)
            ]
            kept = self._breakers = (derived, found)
        return list(kept[1])

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """Its copy of a VirtualService, HTTPRoute or DestinationRule, whole."""
        return self._sim.get(kind, namespace, name, self.cluster)

    async def edit(self, plan: EditPlan, *, dry_run: bool = False) -> dict[str, Any]:
        """The plan's JSON patch to its copy (`Simulation.edit`)."""
        return self._sim.edit(plan, dry_run, self.cluster)

    async def read(self, kind: str, namespace: str, name: str) -> tuple[Route, dict[str, Any]]:
        """One route as it is now, as the Kubernetes control plane reads one."""
        for route in self._sim.mesh.routes.values():
            if (route.kind, route.namespace, route.name) == (kind, namespace, name) and self._mine(
                route.cluster
            ):
                return route, self._sim.get(kind, namespace, name, route.cluster)
        raise UsageError(f"no {kind} {namespace}/{name} in the simulated mesh")

    async def apply(self, plan: Plan, *, dry_run: bool = False) -> Route:
        r = plan.route
        return self._sim.apply_patch(
            r.namespace, r.name, json_patch(plan), dry_run=dry_run, cluster=self.cluster
        )


MAX_SPANS = 300
FAILED_CONNECTIONS = 0.15  # of a callee's failures: the client's proxy never reached it


class SimTraces:
    """Requests walked through the call graph with the current weights, behaviours and
    latencies, as Istio's sidecars trace them: a client span in the caller's proxy, a
    server span in the callee's under it, Istio's tags on both (`istio.canonical_service`,
    `istio.namespace`, `upstream_cluster`, `http.status_code`, `response_flags`). The
    last few hundred traces listed can be fetched again by id."""

    def __init__(self, sim: Simulation, keep: int = 500) -> None:
        self._sim = sim
        self._keep = keep
        self._recent: OrderedDict[str, Trace] = OrderedDict()

    @property
    def name(self) -> str:
        return f"simulated ({self._sim.mesh.name})"

    async def find_traces(self, query: TraceQuery) -> Sequence[TraceSummary]:
        now = self._sim.clock() if query.end_s is None else query.end_s  # the walks then
        found: list[Trace] = []
        for i in range(600):
            trace = self._walk(int(now), i)
            if not matches(trace, query):
                continue
            found.append(trace)
            self._remember(trace)
            if len(found) >= query.limit:
                break
        found.sort(key=lambda t: -t.duration_us)
        return [TraceSummary.of(t) for t in found]

    async def get_trace(self, trace_id: str) -> Trace:
        trace = self._recent.get(trace_id.lower())
        if trace is None and len(trace_id) == 32:
            # The id says which second and which walk: walk it again, as it went then.
            try:
                second, i = int(trace_id[:16], 16), int(trace_id[16:], 16)
            except ValueError:
                second, i = 0, -1
            if 0 <= i < 600 and abs(second - self._sim.clock()) < 7 * 86400:
                trace = self._walk(second, i)
        if trace is None:
            raise BackendError(f"trace {trace_id} not found in the simulated mesh")
        return trace

    def _remember(self, trace: Trace) -> None:
        self._recent[trace.trace_id] = trace
        while len(self._recent) > self._keep:
            self._recent.popitem(last=False)

    def _walk(self, second: int, i: int) -> Trace:
        """The `i`th request of a second: the same walk for the same second and routes."""
        rng = random.Random(f"{second}:{i}")
        at = second - i * 0.05
        mesh = self._sim.mesh
        roots = list(mesh.roots)
        root = rng.choices(roots, weights=[mesh.roots[r] for r in roots])[0]
        trace_id = f"{second:016x}{i:016x}"
        routes = self._sim.routes_at(at)  # the weights of that moment
        held = self._sim.breakers_at(at)  # and the circuit breakers
        shaped = policies_in_force(routes, held)
        latency = latency_guess(mesh, routes)
        spans: list[Span] = []

        def ids() -> str:
            return f"{rng.getrandbits(64):016x}"

        def istio(w: SimWorkload) -> dict[str, str]:
            wl = w.workload
            return {
                "istio.canonical_service": wl.app or wl.name,
                "istio.namespace": wl.namespace,
                "istio.canonical_revision": wl.version or "latest",
                "node_id": f"sidecar~10.0.0.1~{wl.name}-7c9f.{wl.namespace}~{wl.namespace}"
                ".svc.cluster.local",
                "component": "proxy",
            }

        def serve(wid: str, parent: str | None, start_us: int, operation: str) -> tuple[int, str]:
            """The callee's server span and all it calls; its end and HTTP status."""
            w = mesh.node(wid)
            b = w.behaviour
            span_id = ids()
            own = b.median_ms * math.exp(rng.gauss(0, b.sigma)) * 1000
            cursor = start_us + int(own * 0.3)
            index = len(spans)
            spans.append(Span(span_id, parent, "", operation, 0, 0))  # filled in below
            for call in mesh.calls_by_caller[wid]:
                n = int(call.per_request) + (rng.random() < call.per_request % 1)
                for _ in range(n):
                    if len(spans) >= MAX_SPANS or call.protocol is Protocol.TCP:
                        continue
                    options = choices(mesh, call, at, routes, held, latency, shaped)
                    if not options:
                        continue
                    target, _, shaping = rng.choices(options, [s for _, s, _ in options])[0]
                    if w.sidecar:
                        cursor = client(w, call, target, span_id, cursor, shaping)
                    else:  # no proxy of its own: the callee's proxy starts the trace
                        fqdn = mesh.service_fqdn(call.namespace, call.service)
                        cursor = serve(target, None, cursor, f"{fqdn}:9080/*")[0]
            end = cursor + int(own * 0.7)
            status = "500" if rng.random() < b.error_rate else (
                "404" if rng.random() < b.client_error_rate else "200"
            )  # fmt: skip
            if not w.sidecar:  # nobody traced this one's own work
                del spans[index]
                return end, status
            tags = {**istio(w), "http.status_code": status, "response_flags": "-"}
            wl = w.workload
            spans[index] = Span(span_id, parent, f"{wl.app or wl.name}.{wl.namespace}",
                                operation, start_us, end - start_us, status == "500", tags,
                                "server")  # fmt: skip
            return end, status

        def client(
            w: SimWorkload,
            call: SimCall,
            target: str,
            parent: str,
            start_us: int,
            shaping: Shaping | None = None,
        ) -> int:
            """The caller's client span for one call, and the callee's work under it, as
            the caller's proxy's policies have it (`response_flags`: FI, DI, UT, UO, UH,
            NR, as the metrics say them)."""
            callee = mesh.node(target)
            fqdn = mesh.service_fqdn(call.namespace, call.service)
            operation = f"{fqdn}:9080/*"
            span_id = ids()
            index = len(spans)
            spans.append(Span(span_id, parent, "", operation, 0, 0))
            b = callee.behaviour
            flags = "-"
            if shaping is not None and shaping.local:  # answered by the caller's proxy
                said = rng.choices(shaping.local, [o.rps for o in shaping.local])[0]
                end, status, flags = start_us + 300, said.code, said.flags
            elif not callee.sidecar and callee.workload.kind.value == "service":
                end, status, flags = start_us + 300, "503", "UH"  # nothing behind the service
            elif b.error_rate and rng.random() < b.error_rate * FAILED_CONNECTIONS:
                end, status, flags = start_us + 1000, "503", "UF"  # never reached the callee
            else:
                delayed = shaping is not None and rng.random() < shaping.delay_share
                waited = int(shaping.delay_ms * 1000) if shaping is not None and delayed else 0
                begin = start_us + 200 + waited
                flags = "DI" if delayed else "-"
                end, status = serve(target, span_id, begin, operation)
                end += 200
                limit = shaping.timeout_ms if shaping is not None else None
                if limit is not None and end - start_us > limit * 1000:  # the proxy gives up
                    end, status = start_us + int(limit * 1000), "504"
                    flags = "UT,DI" if delayed else "UT"
            subset = callee.workload.version or ""
            tags = {**istio(w), "http.status_code": status, "response_flags": flags,
                    "upstream_cluster": f"outbound|9080|{subset}|{fqdn}"}  # fmt: skip
            wl = w.workload
            spans[index] = Span(span_id, parent, f"{wl.app or wl.name}.{wl.namespace}",
                                operation, start_us, end - start_us,
                                status.startswith("5"), tags, "client")  # fmt: skip
            return end

        serve(root, None, int(at * 1_000_000), "ingress")
        return Trace(trace_id, tuple(spans))
