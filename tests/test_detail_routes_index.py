"""A node's routes found through an index of the snapshot's routes by host (issue 17):
a namespace's box at 20,000 services read every route for each of its 324 workloads,
three times per detail opened (0.4 s of the screen's thread each)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import replace

from meshtop.detail import routes_to
from meshtop.mesh import refresh
from meshtop.model import SERVICE_PREFIX, MeshSnapshot, Route, RouteRule, WeightedDestination
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated


def _read_every_route(snapshot: MeshSnapshot, node_ids: Sequence[str]) -> list[Route]:
    """What `routes_to` says, by its definition: every route read for every node."""
    found: list[Route] = []
    for w in (snapshot.nodes[n] for n in node_ids if n in snapshot.nodes):
        name = w.app or w.name.removeprefix(SERVICE_PREFIX)
        for route in snapshot.routes:
            hosts = {d.host for rule in route.rules for d in rule.destinations}
            here = route.namespace == w.namespace and name in hosts
            there = any(
                h == f"{name}.{w.namespace}" or h.startswith(f"{name}.{w.namespace}.")
                for h in hosts
            )
            if (here or there) and route not in found:
                found.append(route)
    home = {snapshot.nodes[n].cluster for n in node_ids if n in snapshot.nodes}
    return sorted(found, key=lambda r: r.cluster not in home)


class _Counted(tuple[Route, ...]):
    """A snapshot's routes that count how often they are read through."""

    reads = 0

    def __iter__(self) -> Iterator[Route]:
        type(self).reads += 1
        return super().__iter__()


def _snapshot(services: int) -> MeshSnapshot:
    sim = Simulation(generated(services, seed=1), clock=lambda: 1.8e9)
    return asyncio.run(refresh(sim.clusters, clock=sim.clock))


def _with_hosts(snapshot: MeshSnapshot) -> MeshSnapshot:
    """Routes whose hosts are written every way: short, `name.namespace`, the whole name,
    and names that only start like a node's (`reviewsx`, `ns.x` after a longer namespace)."""
    route = snapshot.routes[0]
    w = next(w for w in snapshot.nodes.values() if w.app)
    hosts = (
        w.app,
        f"{w.app}.{w.namespace}",
        f"{w.app}.{w.namespace}.svc.cluster.local",
        f"{w.app}x.{w.namespace}",
        f"{w.app}.{w.namespace}x",
        f"{w.app}.{w.namespace}x.svc",
    )
    extra = tuple(
        replace(route, namespace=ns, name=f"written-{i}-{ns}", rules=(rule,))
        for i, rule in enumerate(RouteRule((WeightedDestination(h, "", 100),)) for h in hosts)
        for ns in (w.namespace, "elsewhere")
    )
    return replace(snapshot, routes=(*snapshot.routes, *extra))


def test_a_nodes_routes_are_those_every_route_read_would_give() -> None:
    snapshot = _with_hosts(_snapshot(300))
    by_namespace: dict[str, list[str]] = {}
    for node_id, w in snapshot.nodes.items():
        by_namespace.setdefault(w.namespace, []).append(node_id)
    asked = [[n] for n in snapshot.nodes] + list(by_namespace.values())
    assert any(len(_read_every_route(snapshot, ids)) > 1 for ids in asked)
    for ids in asked:
        assert routes_to(snapshot, ids) == _read_every_route(snapshot, ids), ids


def test_a_snapshots_routes_are_read_once_for_every_node_and_every_detail() -> None:
    snapshot = _snapshot(300)
    counted = replace(snapshot, routes=_Counted(snapshot.routes))
    by_namespace: dict[str, list[str]] = {}
    for node_id, w in snapshot.nodes.items():
        by_namespace.setdefault(w.namespace, []).append(node_id)
    members = max(by_namespace.values(), key=lambda ids: len(_read_every_route(snapshot, ids)))
    assert len(members) > 10
    _Counted.reads = 0
    found = [routes_to(counted, members) for _ in range(3)]  # a detail asks three times
    assert found[0] and found[0] == found[1] == found[2]
    assert found[0] == _read_every_route(snapshot, members)
    assert _Counted.reads == 1  # once for the index; every route for every member: 3 x 30+
