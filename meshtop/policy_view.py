"""What the routes and DestinationRules of a snapshot say about the calls into a node
(issue 21): the faults injected into them (and whether one is past the end meshtop set),
the timeout and retries of the rule that takes them, and the destination's circuit
breaker. Shared by the edge detail, the graph's fault marker, the exports and the gates,
so that each says the same; and which rule takes a request (`route_verdict`), for the
CLI's and the console's route test."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshtop.detail import routes_to
from meshtop.model import CircuitBreaker, Fault, MeshSnapshot, Retries, Route, RulePolicy
from meshtop.sources.routing import (
    default_rule,
    route_from_httproute,
    route_from_virtual_service,
)
from meshtop.steering.match import parse_request, route_test_gateway, route_test_istio
from meshtop.units import duration


def _ago(seconds: float) -> str:
    return duration(max(1.0, round(seconds)))


@dataclass(frozen=True, slots=True)
class InjectedFault:
    """A fault one rule of a route injects, with the end meshtop set for it (None:
    none set, so it runs until someone removes it)."""

    route: Route
    rule: int
    fault: Fault
    matches: tuple[str, ...]
    expires: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and now >= self.expires

    def words(self, now: datetime) -> str:
        """`abort 503 to 10% (VirtualService bookinfo/reviews rule 0) until 16:40:00 UTC`,
        `… EXPIRED 3m ago`, `… for header end-user = jason …`."""
        where = f"{self.route.kind} {self.route.namespace}/{self.route.name} rule {self.rule}"
        said = f"{self.fault.words()} ({where})"
        if self.matches:
            said += f" for {' or '.join(self.matches)}"
        if self.expires is None:
            return f"{said}, no end set"
        left = (self.expires - now).total_seconds()
        if left <= 0:
            return f"{said} EXPIRED {_ago(-left)} ago"
        return f"{said} until {self.expires:%H:%M:%S %Z} (in {_ago(left)})".replace("  ", " ")


def faults(routes: Iterable[Route]) -> list[InjectedFault]:
    """Every fault the routes inject, route by route, rule by rule."""
    return [
        InjectedFault(route, i, rule.policy.fault, rule.matches, route.fault_expires)
        for route in routes
        for i, rule in enumerate(route.rules)
        if rule.policy.fault is not None
    ]


@dataclass(frozen=True, slots=True)
class Protection:
    """What the control plane sets on the calls into a node: the faults injected, the
    timeout and retries of the rule that takes the calls no match picks (None: none
    set, Istio's default), and the circuit breakers that apply (the host's, and its
    subset's where it names one of the node's version)."""

    faults: tuple[InjectedFault, ...] = ()
    timeout_s: float | None = None
    retries: Retries | None = None
    breakers: tuple[CircuitBreaker, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.faults or self.timeout_s or self.retries or self.breakers)

    def expired(self, now: datetime) -> bool:
        return any(f.expired(now) for f in self.faults)

    def words(self, now: datetime) -> tuple[str, ...]:
        said = [f"fault: {f.words(now)}" for f in self.faults]
        if self.timeout_s is not None:
            said.append(f"timeout {duration(self.timeout_s)}")
        if self.retries is not None:
            retries = self.retries
            said.append("no retries" if retries.attempts == 0 else f"retries {retries.words()}")
        for b in self.breakers:
            said += [f"{b.target}: {w}" for w in b.words()]
        return tuple(said)


def into(snapshot: MeshSnapshot, node_id: str) -> Protection:
    """What applies to the calls into `node_id` (see `Protection`)."""
    w = snapshot.nodes.get(node_id)
    if w is None:
        return Protection()
    routes = routes_to(snapshot, [node_id])
    home = [r for r in routes if r.cluster == w.cluster] or routes[:1]
    rule = default_rule(home[0]) if home else None
    name = w.app or w.name
    found = [
        b
        for b in snapshot.breakers
        if b.namespace == w.namespace and b.host == name and b.subset in ("", w.version)
    ]
    breakers = tuple([b for b in found if b.cluster == w.cluster] or found)
    return Protection(
        faults=tuple(faults(home)),
        timeout_s=rule.policy.timeout_s if rule else None,
        retries=rule.policy.retries if rule else None,
        breakers=breakers,
    )


def any_set(snapshot: MeshSnapshot) -> bool:
    """Whether any route or DestinationRule sets a fault, timeout, retries or circuit
    breaker: when none does (most meshes), a view has nothing to look up per node."""
    return bool(snapshot.breakers) or any(
        rule.policy != RulePolicy() for route in snapshot.routes for rule in route.rules
    )


def by_destination(snapshot: MeshSnapshot) -> dict[str, Protection]:
    """`into` for every node that calls arrive at, where something is set (see `any_set`)."""
    if not any_set(snapshot):
        return {}
    out = {}
    for node_id in {e.destination for e in snapshot.edges}:
        found = into(snapshot, node_id)
        if not found.empty:
            out[node_id] = found
    return out


@dataclass(frozen=True, slots=True)
class RouteVerdict:
    """Which rule of a route (as its object is) takes a request, as `:route-test` and
    `meshtop route-test` say it: the route read from the object, the rule's index (None:
    none does, Envoy answers 404 `NR`), and why each rule before it did not match."""

    route: Route
    rule: int | None
    passed: tuple[str, ...]


def route_verdict(obj: Mapping[str, Any], request_text: str, cluster: str = "") -> RouteVerdict:
    """The verdict for `request_text` (`steering.match.parse_request`'s words) on a
    VirtualService or an HTTPRoute object, with Envoy's semantics."""
    request = parse_request(request_text)
    kind = str(obj.get("kind", ""))
    namespace = str((obj.get("metadata") or {}).get("namespace", ""))
    spec = obj.get("spec") or {}
    if kind == "VirtualService":
        verdict = route_test_istio(list(spec.get("http") or []), request)
        route = route_from_virtual_service(obj, cluster, namespace)
    else:
        verdict = route_test_gateway(list(spec.get("rules") or []), request)
        route = route_from_httproute(obj, cluster, namespace)
    return RouteVerdict(route, verdict.rule, verdict.why)
