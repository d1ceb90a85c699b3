"""The simulated mesh's live walk (issue 17): planned once per topology, routes and circuit
breakers, each refresh working out only its moment's figures, which are every one of them
what the walk of `flows` and `SimEdge.stats` give."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from meshtop.model import Edge, EdgeStats, Protocol, Workload
from meshtop.posture import MtlsMode, PeerAuthentication
from meshtop.sim import walk
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import SimMesh, bookinfo, generated, spread
from meshtop.sim.traffic import flows
from meshtop.steering.edit import circuit_breaker, fault, resilience, steer
from meshtop.steering.match import parse_condition

from .conftest import T0, Clock
from .test_sim_policy import _change

MOMENTS = (T0, T0 + 2, T0 + 4, T0 + 13, T0 + 3_600.5)  # within a 10 s bucket, and beyond


def _walked(mesh: SimMesh, t: float) -> list[Edge]:
    """The edges as `flows` and `SimEdge.stats` make them: what the refresh gave before."""
    return [Edge(e.source.id, e.destination.id, e.stats(), e.service_fqdn) for e in flows(mesh, t)]


def _same(got: list[Edge], want: list[Edge]) -> None:
    assert got == want  # every figure, bit for bit
    for a, b in zip(got, want, strict=True):  # and each mapping in the same order
        for name in ("response_codes", "response_flags", "grpc_statuses"):
            assert list(getattr(a.stats, name).items()) == list(getattr(b.stats, name).items())


def _nodes(mesh: SimMesh, edges: list[Edge]) -> list[Any]:
    return [mesh.node(n).workload for n in sorted({n for e in edges for n in e.key})]


def _policies(sim: Simulation) -> None:
    """Every policy the caller's proxy applies, and what the mesh's security refuses."""
    _change(sim, "VirtualService", "ratings",
            lambda obj: fault(obj, "", abort=(503, 40.0), delay=(0.5, 20.0)),
            by="fault")  # fmt: skip
    _change(sim, "VirtualService", "reviews", lambda obj: resilience(obj, "", timeout=0.08))
    _change(sim, "DestinationRule", "productpage",
            lambda obj: circuit_breaker(obj, "", max_connections=1, max_pending=1))  # fmt: skip
    _change(sim, "VirtualService", "details", lambda obj: steer(
        obj, "", conditions=[parse_condition("source:version=v1")], targets=[("v1", 100)]),
        by="steer")  # fmt: skip
    # the unmeshed client's plain text into STRICT: refused
    sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))


MESHES: dict[str, Callable[[Clock], Simulation]] = {
    "bookinfo": lambda clock: Simulation(bookinfo(), clock=clock),
    "generated": lambda clock: Simulation(generated(300), clock=clock),
    "three clusters": lambda clock: Simulation(spread(generated(120), ("a", "b", "c")), clock),
}


@pytest.mark.parametrize("name", [*MESHES, "bookinfo with policies"])
def test_live_traffic_is_what_the_walk_of_flows_gives(name: str, clock: Clock) -> None:
    sim = MESHES.get(name, MESHES["bookinfo"])(clock)
    if name == "bookinfo with policies":
        _policies(sim)
    for t in MOMENTS:
        clock.now = t
        traffic = sim.metrics._traffic()
        want = _walked(sim.mesh, t)
        _same(list(traffic.edges), want)
        assert list(traffic.nodes) == _nodes(sim.mesh, want)
    if name == "bookinfo with policies":  # what the policies do is in the figures
        flags = {f for e in traffic.edges for f in e.stats.response_flags}
        assert {"FI", "DI", "UT", "UO"} <= flags
        (refused,) = (e for e in traffic.edges if e.source == Workload.unknown().id)
        assert refused.stats.response_codes == {"503": refused.stats.rps}


def test_the_walk_is_planned_once_while_the_topology_and_routes_hold(
    sim: Simulation, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned: list[walk.Walk] = []
    real = walk.Walk.__post_init__

    def counted(self: walk.Walk) -> None:
        planned.append(self)
        real(self)

    monkeypatch.setattr(walk.Walk, "__post_init__", counted)
    for _ in range(3):
        sim.metrics._traffic()
        clock.advance(2)
    assert len(planned) == 1
    sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 50, "v3": 50})  # a route anew
    traffic = sim.metrics._traffic()
    assert len(planned) == 2
    _same(list(traffic.edges), _walked(sim.mesh, clock()))
    assert not any(e.destination.endswith("reviews-v1") for e in traffic.edges)
    sim.mesh.services[("bookinfo", "ratings")] = []  # scaled to zero: a new list
    traffic = sim.metrics._traffic()
    assert len(planned) == 3
    _same(list(traffic.edges), _walked(sim.mesh, clock()))
    sim.metrics._traffic()
    assert len(planned) == 3


def test_a_refresh_works_out_no_crc_for_a_moment_in_the_same_10s(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Simulation(generated(200), clock=clock)
    clock.now = T0 + 0.5  # 10 s buckets start at whole multiples of ten
    sim.metrics._traffic()
    crcs: list[bytes] = []

    def crc32(data: bytes, value: int = 0) -> int:
        crcs.append(data)
        return zlib.crc32(data, value)

    monkeypatch.setattr(walk, "zlib", SimpleNamespace(crc32=crc32))  # the walk's own
    for _ in range(4):
        clock.advance(2)
        sim.metrics._traffic()
    assert crcs == []
    clock.advance(2)  # the next 10 s: each edge's noise once, none per figure
    edges = sim.metrics._traffic().edges
    assert 0 < len(crcs) <= 2 * len(edges)


def test_the_console_refresh_reads_the_walk(sim: Simulation) -> None:
    from meshtop.mesh import refresh

    snapshot = asyncio.run(refresh(sim.clusters))
    assert isinstance(sim.mesh.walk, walk.Walk)
    _same(list(snapshot.edges), _walked(sim.mesh, sim.clock()))


def test_a_security_change_between_refreshes_is_in_the_next(sim: Simulation, clock: Clock) -> None:
    client = Workload.unknown().id
    before = sim.metrics._traffic().edges
    assert "503" not in next(e for e in before if e.source == client).stats.response_codes
    sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.STRICT))
    clock.advance(2)
    after = list(sim.metrics._traffic().edges)
    _same(after, _walked(sim.mesh, clock()))
    refused = next(e for e in after if e.source == client)
    assert refused.stats.response_codes == {"503": refused.stats.rps}


def test_edges_made_slot_by_slot_are_the_dataclasses_own() -> None:
    stats = walk.new_stats(
        Protocol.GRPC, 2.5, 0.1, 1.0, None, 3.0, 1.0, {"200": 2.5}, {}, {"0": 2.25, "14": 0.25},
        0.0, 0.0, 0.0,
    )  # fmt: skip
    made = EdgeStats(
        protocol=Protocol.GRPC, rps=2.5, error_rate=0.1, p50_ms=1.0, p99_ms=3.0, mtls=1.0,
        response_codes={"200": 2.5}, grpc_statuses={"0": 2.25, "14": 0.25},
    )  # fmt: skip
    assert (
        stats == made and repr(stats) == repr(made) and hash(stats.protocol) == hash(made.protocol)
    )
    edge = walk.new_edge("a/b/c", "a/b/d", stats, "d.b.svc.cluster.local")
    assert edge == Edge("a/b/c", "a/b/d", made, "d.b.svc.cluster.local") and edge.key == (
        "a/b/c",
        "a/b/d",
    )
    with pytest.raises(AttributeError):
        edge.stats = made  # type: ignore[misc]  # still frozen
