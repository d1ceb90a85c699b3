"""The routes tab, headless: every rule's destinations with the share the weights give
each (configured) beside the share of the rule's traffic the metrics saw (actual), and
what is wrong with each: a subset no DestinationRule defines, a host with no Service,
weights that add up to 0, a copy in another cluster that differs; and each rule's policy
in words (its fault, flagged EXPIRED past its end, timeout and retries). The console only
draws the rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from meshtop.canary import RouteLine, route_lines
from meshtop.copies import differences
from meshtop.errors import MeshtopError
from meshtop.model import MeshSnapshot, Route
from meshtop.model.policy import expired
from meshtop.sources.protocols import ControlPlane

Subsets = dict[tuple[str, str], set[str]]
Services = set[tuple[str, str]]

COLUMNS = (
    "route", "rule", "matches", "destination", "weight", "configured", "actual", "problem",
    "policy",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One destination of one rule: `key` names it (route id, rule, destination)."""

    key: str
    cells: tuple[str, ...]  # as COLUMNS
    problem: str


async def _checks(plane: ControlPlane) -> tuple[Subsets | None, Services | None]:
    """What a cluster's control plane says of DestinationRule subsets and Services; None
    for what it cannot say (then nothing is flagged for want of it, rather than all)."""
    try:
        subsets: Subsets | None = await plane.subsets()
    except MeshtopError:
        subsets = None
    try:
        services: Services | None = await plane.services()
    except MeshtopError:
        services = None
    return subsets, services


async def rows(
    snapshot: MeshSnapshot, planes: Mapping[str, ControlPlane], timeout_s: float
) -> list[RouteRow]:
    """The routes tab's rows. Every cluster's control plane (by cluster name; "" for the
    one of a mesh of one) is asked at once, none waited for longer than `timeout_s` (a
    silent API server leaves its checks out)."""
    members = dict(planes)
    answers = await asyncio.gather(
        *(asyncio.wait_for(_checks(m), timeout_s) for m in members.values()),
        return_exceptions=True,
    )
    said = {
        c: (None, None) if isinstance(a, BaseException) else a
        for c, a in zip(members, answers, strict=True)
    }
    behind = workloads_behind(snapshot)
    several = len({r.cluster for r in snapshot.routes}) > 1

    def observed(route: Route, destination: str) -> float:
        """What the proxies that follow this copy sent there: with several clusters,
        the calls from the route's own cluster."""
        nodes = set(behind(route, destination))
        return sum(
            e.stats.rps
            for e in snapshot.edges
            if e.destination in nodes and (not several or e.source.startswith(route.cluster + "/"))
        )

    lines = [
        line
        for cluster, (subsets, services) in said.items()
        for line in route_lines(
            [r for r in snapshot.routes if not cluster or r.cluster == cluster],
            subsets, services, observed,
        )
    ]  # fmt: skip
    differ = differences(snapshot.routes)
    return [_row(line, differ, several, snapshot.generated_at) for line in lines]


def policy_words(route: Route, rule: int, now: datetime) -> str:
    """A rule's fault (`EXPIRED` once past the end meshtop set for it), timeout and
    retries, in words; "" for none."""
    said = list(route.rules[rule].policy.words())
    if said and said[0].startswith("fault:") and expired(route.fault_expires, now):
        said[0] += " EXPIRED"
    return "; ".join(said)


def _row(
    line: RouteLine, differ: dict[tuple[str, int, int], str], several: bool, now: datetime
) -> RouteRow:
    """The route and the rule named on their first line only; what is wrong with the
    destination, or how the copies differ."""
    rule = line.route.rules[line.rule]
    d = rule.destinations[line.destination]
    where = f"{line.route.cluster}: " if several else ""
    differs = differ.get((line.route.id, line.rule, line.destination), "")
    problem = "; ".join(p for p in (line.problem, differs) if p)
    first = line.destination == 0
    return RouteRow(
        f"{line.route.id}|{line.rule}|{line.destination}",
        (
            f"{where}{line.route.kind} {line.route.namespace}/{line.route.name}"
            if first and line.rule == 0 else "",
            (rule.name or str(line.rule)) if first else "",
            (" and ".join(rule.matches) or "everything else") if first else "",
            f"{d.host} {d.subset}".strip(),
            str(d.weight),
            f"{line.configured:.0%}",
            "-" if line.actual is None else f"{line.actual:.1%}",
            problem,
            policy_words(line.route, line.rule, now) if first else "",
        ),
        problem,
    )  # fmt: skip


def workloads_behind(snapshot: MeshSnapshot) -> Callable[[Route, str], list[str]]:
    """The snapshot's workloads behind a route's destination: for a VirtualService those
    of the host's app whose version is the subset's name (Istio's convention, as
    Bookinfo's DestinationRules have it); for an HTTPRoute those its backend service's
    calls reached."""

    def find(route: Route, destination: str) -> list[str]:
        if route.kind == "VirtualService":
            if "/" in destination:  # a subset two hosts share, named with its host
                host, version = destination.rsplit("/", 1)
                hosts = {host.split(".")[0]}
            else:
                version = destination
                hosts = {
                    d.host.split(".")[0]
                    for rule in route.rules
                    for d in rule.destinations
                    if (d.subset or d.host) == destination
                }
            return sorted(
                n
                for n, w in snapshot.nodes.items()
                if w.namespace == route.namespace and w.app in hosts and w.version == version
            )
        return sorted(
            {e.destination for e in snapshot.edges if e.service.split(".")[0] == destination}
        )

    return find
