"""The simulated mesh's static shape: workloads with their behaviour, who calls whom, and
the routing. `bookinfo()` loads Istio's real Bookinfo manifests; `generated()` builds a
larger, deterministic mesh for scale work; `spread()` runs either over several clusters.
Over 400 lines: Bookinfo from its manifests, the generated mesh and the spread over
clusters are the three makers of one shape."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import resources
from typing import Any

import yaml

from meshtop.model import CircuitBreaker, NodeKind, Protocol, Route, Workload
from meshtop.sim.objects import (
    DESTINATION_RULE,
    BreakerKey,
    ObjectKey,
    breakers_by_host,
    key_of,
    routes_of,
    subsets_of,
)

CLUSTER = "Kubernetes"  # Istio's default cluster name
RouteKey = tuple[str, str, str]  # (cluster, namespace, host)
TRUST_DOMAIN = "cluster.local"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How a workload answers: its own processing time (log-normal, median and shape) and
    the share of requests it fails (5xx, or a non-OK gRPC status) or rejects (4xx)."""

    median_ms: float = 5.0
    sigma: float = 0.4
    error_rate: float = 0.0
    client_error_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class SimWorkload:
    workload: Workload
    service: str  # the service it backs ("" for clients and gateways)
    behaviour: Behaviour = Behaviour()
    sidecar: bool = True
    service_account: str = "default"
    kind: str = "deployment"  # what owns its pods: Linkerd's labels name it by its kind

    @property
    def id(self) -> str:
        return self.workload.id

    @property
    def principal(self) -> str:
        w = self.workload
        return f"spiffe://{TRUST_DOMAIN}/ns/{w.namespace}/sa/{self.service_account}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """How the mesh's security refuses a call at a moment, as the proxies count it: the
    code and Envoy flags it is answered with, and whether the server's proxy saw it (a
    connection it closed is counted by the client's proxy only)."""

    code: str
    flags: str = "-"
    arrived: bool = True


@dataclass(frozen=True, slots=True)
class Guard:
    """What the mesh's security does to a call at a moment: whether the client's proxy
    sends it in plain text (a DestinationRule's `tls.mode: DISABLE`), and how it is
    refused, if it is."""

    plaintext: bool = False
    refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class SimCall:
    """Each request `caller` serves makes `per_request` calls to a service."""

    caller: str  # workload id
    namespace: str  # of the called service
    service: str  # short name of the called service
    per_request: float = 1.0
    protocol: Protocol = Protocol.HTTP
    # TCP only: bytes per connection each way.
    request_bytes: int = 0
    response_bytes: int = 0


@dataclass
class SimMesh:
    """Mutable only through its control plane's objects (the simulator's control plane
    writes them): `routes` and `subsets` are what they say (`sim/objects.py`)."""

    name: str
    workloads: dict[str, SimWorkload]
    services: dict[tuple[str, str], list[str]]  # (namespace, service) -> workload ids
    calls: list[SimCall]
    roots: dict[str, float]  # workload id -> requests/s it starts (gateways, clients)
    routes: dict[RouteKey, Route]  # (cluster, namespace, host) -> that cluster's copy
    subsets: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    external_hosts: frozenset[str] = frozenset()
    # Services that got traffic no workload could take, as graph nodes (made on demand).
    unserved_nodes: dict[str, SimWorkload] = field(default_factory=dict)
    clusters: tuple[str, ...] = (CLUSTER,)  # the first is where unmeshed clients live
    # What the security configuration does to calls from a workload to another at a
    # moment (plain text, refused), where the simulation carries one (sim/security.py).
    guard: Callable[[SimWorkload, SimWorkload, float], Guard] | None = None
    # Each cluster's VirtualServices, HTTPRoutes and DestinationRules, whole, as the
    # Kubernetes API serves them: `routes` and `subsets` are derived from them.
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    # (cluster, namespace, host) -> its DestinationRules' circuit breakers (from `objects`)
    breakers: dict[BreakerKey, tuple[CircuitBreaker, ...]] = field(init=False)

    # id(route) -> the route and its object's rules, as written (`rules_of`)
    specs: dict[int, tuple[Route, list[Any]]] = field(init=False)
    # the live traffic's walk, planned once for the routes and breakers now (sim/walk.py)
    walk: object = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.breakers = breakers_by_host(self.objects)
        self.specs = {}
        for route in self.routes.values():
            obj = self.objects.get((route.cluster, route.kind, route.namespace, route.name))
            if obj is not None and id(route) not in self.specs:
                self.remember(route, obj)

    def remember(self, route: Route, obj: Mapping[str, Any]) -> None:
        """Keep the rules of the object a route was read from, for `rules_of`."""
        rules = (obj.get("spec") or {}).get("http" if route.kind == "VirtualService" else "rules")
        self.specs[id(route)] = (route, list(rules or []))

    def rules_of(self, route: Route) -> list[Any] | None:
        """The rules of the object a route was read from, as written (their match
        conditions whole, which the route says in words only); None if unknown."""
        found = self.specs.get(id(route))
        return found[1] if found is not None and found[0] is route else None

    def home(self, node_id: str) -> str:
        """The cluster whose control plane routes a workload's calls: its own, or the
        first one for a peer outside every cluster (an unmeshed client)."""
        cluster = self.node(node_id).workload.cluster
        return cluster if cluster in self.clusters else self.clusters[0]

    def node(self, node_id: str) -> SimWorkload:
        found = self.workloads.get(node_id)
        return found if found is not None else self.unserved_nodes[node_id]

    def unserved(self, cluster: str, namespace: str, service: str) -> SimWorkload:
        w = Workload.service(cluster, namespace, service)
        if w.id not in self.unserved_nodes:
            # The client's own proxy answers at once: no proxy behind, no time spent.
            self.unserved_nodes[w.id] = SimWorkload(
                w, service, Behaviour(median_ms=0.3, sigma=0.2), sidecar=False
            )
        return self.unserved_nodes[w.id]

    @cached_property
    def calls_by_caller(self) -> dict[str, list[SimCall]]:
        by_caller: dict[str, list[SimCall]] = {w: [] for w in self.workloads}
        for call in self.calls:
            by_caller[call.caller].append(call)
        return by_caller

    @cached_property
    def call_order(self) -> list[str]:
        """Workload ids, every caller before what it may call (the call graph is a DAG)."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.workloads)
        g.add_edges_from(
            (c.caller, target)
            for c in self.calls
            for target in self.services.get((c.namespace, c.service), ())
        )
        return list(nx.topological_sort(g))

    def service_fqdn(self, namespace: str, service: str) -> str:
        if service in self.external_hosts:
            return service
        return f"{service}.{namespace}.svc.{TRUST_DOMAIN}"


def _load_manifests(name: str) -> list[dict[str, Any]]:
    text = resources.files("meshtop.sim").joinpath("bookinfo").joinpath(name).read_text("utf-8")
    return [doc for doc in yaml.safe_load_all(text) if doc]


BOOKINFO_NAMESPACE = "bookinfo"
BOOKINFO_BEHAVIOUR = {
    "productpage-v1": Behaviour(median_ms=9.0, sigma=0.5, client_error_rate=0.01),
    "details-v1": Behaviour(median_ms=2.0, sigma=0.35),
    "reviews-v1": Behaviour(median_ms=5.0, sigma=0.4),
    "reviews-v2": Behaviour(median_ms=6.0, sigma=0.45),
    # The poor canary: slow, and failing (its errors drift 10.5% to 19.5% on a wave: over
    # the failing threshold, 10%, all the time, so the demo's first `n` finds it failing;
    # under 20%, a lenient threshold, too).
    "reviews-v3": Behaviour(median_ms=28.0, sigma=0.8, error_rate=0.15),
    "ratings-v1": Behaviour(median_ms=2.5, sigma=0.35),
}
BOOKINFO_ROUTE_FILES = ("virtual-service-all-v1.yaml", "virtual-service-reviews-canary.yaml")
GOOGLEAPIS = "www.googleapis.com"
VM_NAME = "legacy-batch"  # a batch job on a VM (a WorkloadEntry), outside Kubernetes
# The VM's WorkloadEntry is the application's, in its namespace, as Istio's "Bookinfo with
# a Virtual Machine" registers its VM: a namespace of its own would be one more band on
# the graph, and Bookinfo would no longer fit 80x24 at the compact zoom (README).
VM_NAMESPACE = BOOKINFO_NAMESPACE


def bookinfo(ingress_rps: float = 20.0) -> SimMesh:
    """Istio's Bookinfo from its real manifests, behind the ingress gateway, plus what a
    real installation shows beside it: an unmeshed client calling productpage in plain
    text, details reaching Google's book API (a ServiceEntry's host) over TCP outside the
    mesh, and asking a legacy system on a VM (a WorkloadEntry in bookinfo's namespace,
    with a proxy) for stock."""
    ns = BOOKINFO_NAMESPACE
    workloads: dict[str, SimWorkload] = {}
    services: dict[tuple[str, str], list[str]] = {}
    selectors: dict[str, str] = {}
    for doc in _load_manifests("bookinfo.yaml"):
        meta = doc["metadata"]
        if doc["kind"] == "Service":
            selectors[meta["name"]] = doc["spec"]["selector"]["app"]
        elif doc["kind"] == "Deployment":
            labels = doc["spec"]["template"]["metadata"]["labels"]
            wl = Workload(CLUSTER, ns, meta["name"], labels["app"], labels.get("version", ""))
            workloads[wl.id] = SimWorkload(
                wl,
                service=labels["app"],
                behaviour=BOOKINFO_BEHAVIOUR.get(meta["name"], Behaviour()),
                service_account=doc["spec"]["template"]["spec"].get(
                    "serviceAccountName", "default"
                ),
            )
    for service, app in selectors.items():
        services[(ns, service)] = [w.id for w in workloads.values() if w.workload.app == app]

    gateway = _ingress_gateway()
    client = SimWorkload(Workload.unknown(), service="", sidecar=False)
    google = SimWorkload(Workload.service_entry(GOOGLEAPIS), service=GOOGLEAPIS, sidecar=False)
    vm = SimWorkload(
        Workload(CLUSTER, VM_NAMESPACE, VM_NAME, VM_NAME, kind=NodeKind.VM),
        service=VM_NAME,
        behaviour=Behaviour(median_ms=4.0, sigma=0.4),
        service_account=VM_NAME,
    )
    for extra in (gateway, client, google, vm):
        workloads[extra.id] = extra
    services[(VM_NAMESPACE, VM_NAME)] = [vm.id]
    services[(ns, GOOGLEAPIS)] = [google.id]

    def wid(name: str) -> str:
        return Workload(CLUSTER, ns, name).id

    # Who calls whom is the application's code, not its manifests: productpage asks
    # details and reviews for every page; reviews v2 and v3 ask ratings, v1 does not.
    calls = [
        SimCall(gateway.id, ns, "productpage"),
        SimCall(client.id, ns, "productpage"),
        SimCall(wid("productpage-v1"), ns, "details"),
        SimCall(wid("productpage-v1"), ns, "reviews"),
        SimCall(wid("reviews-v2"), ns, "ratings"),
        SimCall(wid("reviews-v3"), ns, "ratings"),
        SimCall(wid("details-v1"), VM_NAMESPACE, VM_NAME, per_request=0.1),
        SimCall(
            wid("details-v1"),
            ns,
            GOOGLEAPIS,
            per_request=0.2,
            protocol=Protocol.TCP,
            request_bytes=850,
            response_bytes=5200,
        ),
    ]

    # The routes and DestinationRules as the manifests have them, as applied to the
    # namespace (a later file's object replaces an earlier one of the same name).
    objects: dict[ObjectKey, dict[str, Any]] = {}
    for filename in (*BOOKINFO_ROUTE_FILES, "destination-rule-all-mtls.yaml"):
        for doc in _load_manifests(filename):
            if doc["kind"] in ("VirtualService", DESTINATION_RULE):
                doc["metadata"].update(namespace=ns, resourceVersion="1", generation=1)
                objects[key_of(doc, CLUSTER)] = doc
    subsets = {
        k: v for obj in objects.values() if obj["kind"] == DESTINATION_RULE
        for k, v in subsets_of(obj).items()
    }  # fmt: skip
    routes: dict[RouteKey, Route] = routes_of(objects)
    return SimMesh(
        name="bookinfo",
        workloads=workloads,
        services=services,
        calls=calls,
        roots={gateway.id: ingress_rps, client.id: 1.0},
        routes=routes,
        subsets=subsets,
        external_hosts=frozenset({GOOGLEAPIS}),
        objects=objects,
    )


_NAMESPACE_NAMES = (
    "storefront", "catalog", "search", "orders", "payments", "identity", "shipping",
    "inventory", "pricing", "reviews", "ads", "notifications", "analytics", "media",
    "accounts", "fraud", "loyalty", "support", "recommend", "billing",
)  # fmt: skip
_SERVICE_WORDS = (
    "api", "gateway", "frontend", "web", "edge", "profile", "session", "cart", "checkout",
    "quote", "ledger", "index", "query", "rank", "feed", "events", "worker", "scheduler",
    "resolver", "router", "auth", "token", "policy", "audit", "export", "import", "sync",
    "render", "thumbs", "mailer", "sms", "push", "geo", "tax", "fx", "stock", "reserve",
)  # fmt: skip
_STORE_WORDS = ("db", "cache", "store", "queue", "kv")

# Share of services per layer, top (edge) to bottom (data stores).
_LAYERS = (0.06, 0.16, 0.34, 0.29, 0.15)


def generated(services: int, seed: int = 1, ingress_rps: float | None = None) -> SimMesh:
    """A realistic mesh of `services` services: several namespaces, a layered call graph
    with fan-out (callers call lower layers, mostly in their own namespace), gRPC between
    the middle layers, TCP to data stores, a few canaries split by a VirtualService, one
    ingress gateway, an unmeshed client and two external hosts. Same seed, same mesh."""
    if services < 1:
        raise ValueError("a mesh needs at least one service")
    if ingress_rps is None:
        ingress_rps = 10.0 * services  # bigger meshes serve more
    rng = random.Random(seed)
    n_namespaces = max(1, min(len(_NAMESPACE_NAMES) * 4, math.ceil(services / 40)))
    namespaces = [
        _NAMESPACE_NAMES[i % len(_NAMESPACE_NAMES)] + ("" if i < len(_NAMESPACE_NAMES) else f"-{i}")
        for i in range(n_namespaces)
    ]
    shares = _LAYERS[: min(len(_LAYERS), services)]
    counts = [max(1, int(services * share / sum(shares))) for share in shares]
    counts[counts.index(max(counts))] += services - sum(
        counts
    )  # the largest layer absorbs rounding

    workloads: dict[str, SimWorkload] = {}
    svc_index: dict[tuple[str, str], list[str]] = {}
    layers: list[list[tuple[str, str]]] = []
    used: set[tuple[str, str]] = set()
    for layer, count in enumerate(counts):
        members: list[tuple[str, str]] = []
        for _ in range(count):
            ns = rng.choice(namespaces)
            words = _STORE_WORDS if layer == len(counts) - 1 else _SERVICE_WORDS
            base = f"{ns.split('-')[0]}-{rng.choice(words)}"
            name, k = base, 2
            while (ns, name) in used:
                name, k = f"{base}-{k}", k + 1
            used.add((ns, name))
            members.append((ns, name))
        layers.append(members)

    objects: dict[ObjectKey, dict[str, Any]] = {}
    subsets: dict[tuple[str, str, str], dict[str, str]] = {}
    # Every mesh with a middle layer gets at least one canary; bigger ones about 4%.
    middle = [s for layer in layers[1:-1] for s in layer]
    first_canary = rng.choice(middle) if middle else None
    for layer, members in enumerate(layers):
        store = layer == len(layers) - 1
        for ns, name in members:
            canary = 0 < layer < len(layers) - 1 and (
                (ns, name) == first_canary or rng.random() < 0.04
            )
            versions = ["v1", "v2"] if canary else ["v1"]
            if canary and rng.random() < 0.25:
                versions.append("v3")
            ids = []
            for v in versions:
                bad = canary and v != "v1" and rng.random() < 0.5
                behaviour = Behaviour(
                    median_ms=rng.uniform(0.5, 3.0) if store else rng.uniform(1.5, 25.0),
                    sigma=rng.uniform(0.25, 0.7),
                    error_rate=(
                        rng.uniform(0.03, 0.2)
                        if bad
                        else (rng.uniform(0.0005, 0.02) if rng.random() < 0.08 else 0.0)
                    ),
                    client_error_rate=rng.uniform(0.0, 0.05) if layer <= 1 else 0.0,
                )
                wl = Workload(CLUSTER, ns, f"{name}-{v}", name, v)
                workloads[wl.id] = SimWorkload(
                    wl, name, behaviour, service_account=name,
                    kind="statefulset" if store else "deployment",  # data stores keep state
                )  # fmt: skip
                ids.append(wl.id)
            svc_index[(ns, name)] = ids
            if canary:
                weights = [90, 10] if len(versions) == 2 else [80, 15, 5]
                for doc in _canary_objects(ns, name, versions, weights):
                    objects[key_of(doc, CLUSTER)] = doc
                for v in versions:
                    subsets[(ns, name, v)] = {"version": v}

    layer_of = {s: i for i, members in enumerate(layers) for s in members}
    calls: list[SimCall] = []
    for layer, members in enumerate(layers[:-1]):
        below = [s for lower in layers[layer + 1 :] for s in lower]
        next_layer = layers[layer + 1]
        for ns, name in members:
            fan_out = rng.randint(1, 4)
            same_ns = [s for s in next_layer if s[0] == ns]
            targets: set[tuple[str, str]] = set()
            for _ in range(fan_out):
                pool = same_ns if same_ns and rng.random() < 0.7 else next_layer
                if rng.random() < 0.2:
                    pool = below
                targets.add(rng.choice(pool))
            for target in sorted(targets):
                tcp = layer_of[target] == len(layers) - 1
                grpc = not tcp and layer >= 1 and rng.random() < 0.25
                for caller in svc_index[(ns, name)]:
                    calls.append(
                        SimCall(
                            caller,
                            target[0],
                            target[1],
                            per_request=round(rng.uniform(0.1, 0.8), 2),
                            protocol=Protocol.TCP
                            if tcp
                            else (Protocol.GRPC if grpc else Protocol.HTTP),
                            request_bytes=rng.randint(200, 2000) if tcp else 0,
                            response_bytes=rng.randint(500, 20000) if tcp else 0,
                        )
                    )

    # Nobody deploys a service nothing calls: give each orphan a caller one layer up.
    called = {(c.namespace, c.service) for c in calls}
    for layer, members in enumerate(layers[1:], start=1):
        for target in members:
            if target in called:
                continue
            above = layers[layer - 1]
            same_ns = [s for s in above if s[0] == target[0]]
            ns, name = rng.choice(same_ns or above)
            tcp = layer == len(layers) - 1
            for caller in svc_index[(ns, name)]:
                calls.append(
                    SimCall(
                        caller,
                        *target,
                        per_request=round(rng.uniform(0.1, 0.8), 2),
                        protocol=Protocol.TCP if tcp else Protocol.HTTP,
                        request_bytes=rng.randint(200, 2000) if tcp else 0,
                        response_bytes=rng.randint(500, 20000) if tcp else 0,
                    )
                )

    gateway = _ingress_gateway()
    client = SimWorkload(Workload.unknown(), service="", sidecar=False)
    workloads[gateway.id] = gateway
    workloads[client.id] = client
    for ns, name in layers[0]:  # each request at the gateway goes to one front end
        calls.append(SimCall(gateway.id, ns, name, per_request=1 / len(layers[0])))
    calls.append(SimCall(client.id, *layers[0][0]))

    externals = ("api.stripe.com", "hooks.slack.com")
    for host in externals:
        ext = SimWorkload(Workload.external(host), host, sidecar=False)
        workloads[ext.id] = ext
        ns, name = rng.choice(layers[min(2, len(layers) - 2)])
        svc_index[(ns, host)] = [ext.id]
        for caller in svc_index[(ns, name)]:
            calls.append(
                SimCall(
                    caller, ns, host, 0.05, Protocol.TCP, request_bytes=900, response_bytes=3000
                )
            )

    return SimMesh(
        name=f"generated-{services}-seed{seed}",
        workloads=workloads,
        services=svc_index,
        calls=calls,
        roots={gateway.id: ingress_rps, client.id: ingress_rps * 0.01},
        routes=routes_of(objects),
        subsets=subsets,
        external_hosts=frozenset(externals),
        objects=objects,
    )


def _ingress_gateway() -> SimWorkload:
    return SimWorkload(
        Workload(CLUSTER, "istio-system", "istio-ingressgateway", "istio-ingressgateway"),
        service="",
        behaviour=Behaviour(median_ms=0.6, sigma=0.3),
        service_account="istio-ingressgateway-service-account",
    )


def _canary_objects(
    namespace: str, service: str, versions: list[str], weights: list[int]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A canary's VirtualService (its weights) and DestinationRule (its subsets)."""

    def meta() -> dict[str, Any]:
        return {"name": service, "namespace": namespace, "resourceVersion": "1", "generation": 1}

    route = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": meta(),
        "spec": {
            "hosts": [service],
            "http": [
                {
                    "route": [
                        {"destination": {"host": service, "subset": v}, "weight": w}
                        for v, w in zip(versions, weights, strict=True)
                    ]
                }
            ],
        },
    }
    rule = {
        "apiVersion": "networking.istio.io/v1",
        "kind": DESTINATION_RULE,
        "metadata": meta(),
        "spec": {
            "host": service,
            "subsets": [{"name": v, "labels": {"version": v}} for v in versions],
        },
    }
    return route, rule


DEMO_CLUSTERS = ("east", "west", "south")


def spread(mesh: SimMesh, clusters: Sequence[str]) -> SimMesh:
    """`mesh` run as a multi-primary mesh over `clusters`, as Istio installs one: each
    cluster has its own ingress gateway (the traffic shared between them) and its own
    copy of every route; a service's workloads in every cluster answer for it, the
    caller's own cluster first. The first version of each app runs everywhere; each
    later version runs in one cluster only (version i in cluster i mod n), so calls
    to it from the other clusters cross over. The last cluster's copy of the first
    weighted route has drifted: 10 points moved from its second destination to its first.
    Every cluster holds its own copy of each object; the routes are what they say."""
    if len(clusters) < 2 or len(set(clusters)) != len(clusters):
        raise ValueError("spread a mesh over two or more distinct clusters")
    mesh = _without_vms(mesh)
    versions: dict[tuple[str, str], list[str]] = {}
    for w in mesh.workloads.values():
        if w.workload.kind is NodeKind.WORKLOAD and w.workload.version:
            versions.setdefault((w.workload.namespace, w.workload.app), []).append(
                w.workload.version
            )

    def placed(w: SimWorkload) -> tuple[str, ...]:
        wl = w.workload
        if wl.kind is not NodeKind.WORKLOAD:
            return ()  # outside every cluster: kept as it is
        known = sorted(versions.get((wl.namespace, wl.app), [wl.version]))
        i = known.index(wl.version) if wl.version in known else 0
        return tuple(clusters) if i == 0 else (clusters[i % len(clusters)],)

    workloads: dict[str, SimWorkload] = {}
    copies: dict[str, list[str]] = {}
    for wid, w in mesh.workloads.items():
        where = placed(w)
        if not where:
            workloads[wid] = w
            copies[wid] = [wid]
            continue
        copies[wid] = []
        for c in where:
            copy = replace(w, workload=replace(w.workload, cluster=c))
            workloads[copy.id] = copy
            copies[wid].append(copy.id)
    services = {key: [c for wid in ids for c in copies[wid]] for key, ids in mesh.services.items()}
    calls = [replace(call, caller=c) for call in mesh.calls for c in copies[call.caller]]
    roots = {c: rps / len(copies[wid]) for wid, rps in mesh.roots.items() for c in copies[wid]}
    objects: dict[ObjectKey, dict[str, Any]] = {}
    drifted = False
    for c in clusters:
        for (_, kind, ns, name), obj in mesh.objects.items():
            mine = deepcopy(obj)
            if c == clusters[-1] and not drifted and kind != DESTINATION_RULE:
                drifted = _drift(mine)
            objects[(c, kind, ns, name)] = mine
    return SimMesh(
        name=f"{mesh.name} on {len(clusters)} clusters",
        workloads=workloads,
        services=services,
        calls=calls,
        roots=roots,
        routes=routes_of(objects),
        subsets=mesh.subsets,
        external_hosts=mesh.external_hosts,
        clusters=tuple(clusters),
        objects=objects,
    )


def _without_vms(mesh: SimMesh) -> SimMesh:
    """The mesh without its workloads on VMs, nor the calls to and from them: a VM joins
    one cluster's network, and a mesh spread over clusters keeps to what each runs."""
    vms = {n for n, w in mesh.workloads.items() if w.workload.kind is NodeKind.VM}
    if not vms:
        return mesh
    theirs = {k for k, ids in mesh.services.items() if set(ids) & vms}
    return replace(
        mesh,
        workloads={n: w for n, w in mesh.workloads.items() if n not in vms},
        services={k: ids for k, ids in mesh.services.items() if k not in theirs},
        calls=[c for c in mesh.calls
               if c.caller not in vms and (c.namespace, c.service) not in theirs],
        roots={n: r for n, r in mesh.roots.items() if n not in vms},
    )  # fmt: skip


def _drift(obj: dict[str, Any]) -> bool:
    """Whether the route object had a rule whose second destination has 10 points or
    more, the first rule of such moved to its first destination."""
    key, default = ("http", 0) if obj["kind"] == "VirtualService" else ("rules", 1)
    for rule in obj["spec"].get(key) or []:
        ds = rule.get("route" if key == "http" else "backendRefs") or []
        if len(ds) >= 2 and ds[1].get("weight", default) >= 10:
            ds[0]["weight"] = ds[0].get("weight", default) + 10
            ds[1]["weight"] = ds[1].get("weight", default) - 10
            return True
    return False
