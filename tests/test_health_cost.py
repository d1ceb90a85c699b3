"""Grading a large mesh each refresh (issue 17): the console's memory grades each edge
once (its health now, which `settle` is asked about only where it may keep another), and
a node takes the worst of its edges as they come, and a refresh of the same calls keys
its grades with the same tuples; the grades are what they were."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from meshtop import health
from meshtop.health import HealthMemory, edge_health, node_health, settle
from meshtop.mesh import refresh
from meshtop.model import EdgeStats, Health, MeshSnapshot, Workload
from meshtop.model.stats import client_errors
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated

from .conftest import Clock


def test_a_refresh_grades_each_edge_once(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    sim = Simulation(generated(300), clock=clock)
    memory = HealthMemory()
    memory.grade(asyncio.run(refresh(sim.clusters)))
    clock.advance(2)
    snapshot = asyncio.run(refresh(sim.clusters))
    graded: list[EdgeStats] = []
    real = health.edge_health

    def counted(stats: EdgeStats, t: health.Thresholds = health.DEFAULT_THRESHOLDS) -> Health:
        graded.append(stats)
        return real(stats, t)

    monkeypatch.setattr(health, "edge_health", counted)
    grades = memory.grade(snapshot)
    assert len(graded) == len(snapshot.edges)  # twice before: settle's and seen's
    assert grades.edges == {e.key: real(e.stats) for e in snapshot.edges}  # none near a line


def test_a_node_is_its_worst_inbound_edge_else_its_worst_outbound_one() -> None:
    edges = {
        ("gw", "a"): Health.HEALTHY, ("gw", "b"): Health.FAILING, ("a", "b"): Health.DEGRADED,
        ("b", "c"): Health.IDLE, ("a", "c"): Health.HEALTHY, ("x", "gw"): Health.IDLE,
    }  # fmt: skip
    assert node_health(edges, ["gw", "a", "b", "c", "x", "lonely"]) == {
        "gw": Health.IDLE, "a": Health.HEALTHY, "b": Health.FAILING, "c": Health.HEALTHY,
        "x": Health.IDLE, "lonely": Health.IDLE,
    }  # fmt: skip


def test_a_refresh_of_the_same_calls_keys_its_grades_with_the_same_tuples(clock: Clock) -> None:
    sim = Simulation(generated(300), clock=clock)
    memory = HealthMemory()
    first = memory.grade(asyncio.run(refresh(sim.clusters)))
    clock.advance(2)
    second = memory.grade(asyncio.run(refresh(sim.clusters)))
    assert list(second.edges) == list(first.edges)
    assert all(a is b for a, b in zip(second.edges, first.edges, strict=True))  # no new tuple
    (_, namespace, host), route = next(iter(sim.mesh.routes.items()))  # a canary's
    subsets = [d.subset for d in route.rules[0].destinations]
    sim.set_weights(namespace, host, {s: 100 if s == subsets[-1] else 0 for s in subsets})
    clock.advance(2)
    snapshot = asyncio.run(refresh(sim.clusters))
    third = memory.grade(snapshot)  # other calls: keyed afresh, each edge's own
    assert list(third.edges) == [e.key for e in snapshot.edges]


class _Counted(dict[tuple[str, str], Health]):
    """A memory's grades that count the lookups made in them by key."""

    looked_up = 0

    def get(self, key: object, default: object = None) -> object:  # type: ignore[override]
        _Counted.looked_up += 1
        return super().get(key, default)  # type: ignore[call-overload]


def _settled(snapshots: list[MeshSnapshot]) -> dict[tuple[str, str], Health]:
    """What `settle` shows of each call after these refreshes, its grades kept by key."""
    shown: dict[tuple[str, str], Health] = {}
    seen: dict[tuple[str, str], Health] = {}
    for s in snapshots:
        shown, seen = (
            {e.key: settle(shown.get(e.key), seen.get(e.key), e.stats) for e in s.edges},
            {e.key: edge_health(e.stats) for e in s.edges},
        )
    return shown


def test_a_refresh_of_the_same_calls_finds_their_grades_before_by_place(
    clock: Clock,
) -> None:
    sim = Simulation(generated(300), clock=clock)
    memory = HealthMemory()
    snapshots = []
    for _ in range(6):
        snapshots.append(asyncio.run(refresh(sim.clusters)))
        clock.advance(2)
    for s in snapshots[:2]:
        memory.grade(s)
    memory.shown, memory.seen = _Counted(memory.shown), _Counted(memory.seen)
    _Counted.looked_up = 0
    for i, s in enumerate(snapshots[2:], 3):
        grades = memory.grade(s)
        assert grades.edges == _settled(snapshots[:i])
        assert list(grades.nodes.items()) == list(node_health(grades.edges, s.nodes).items())
    # each call's grades before found without hashing its key (twice a call before)
    assert _Counted.looked_up == 0
    lonely = Workload("", "shop", "lonely")  # a node more, the same calls
    more = replace(snapshots[-1], nodes={lonely.id: lonely, **snapshots[-1].nodes})
    assert list(memory.grade(more).nodes.items()) == list(
        node_health(memory.shown, more.nodes).items()
    )


def test_calls_that_share_a_key_are_graded_as_a_mapping_of_keys_has_them(clock: Clock) -> None:
    sim = Simulation(generated(60), clock=clock)
    snapshots = []
    for _ in range(3):
        s = asyncio.run(refresh(sim.clusters))
        # the first call twice: its grades before are the last one's with its key
        snapshots.append(replace(s, edges=(*s.edges, s.edges[0])))
        clock.advance(2)
    memory = HealthMemory()
    for i, s in enumerate(snapshots, 1):
        grades = memory.grade(s)
        assert list(grades.edges) == list(dict.fromkeys(e.key for e in s.edges))
        assert grades.edges == _settled(snapshots[:i])
        assert grades.nodes == node_health(grades.edges, s.nodes)


def test_an_edge_whose_errors_fail_it_adds_up_no_4xx(monkeypatch: pytest.MonkeyPatch) -> None:
    added: list[object] = []
    real = client_errors

    def counted(codes: dict[str, float], rps: float) -> float:
        added.append(codes)
        return real(codes, rps)

    monkeypatch.setattr(health, "client_errors", counted)
    failing = EdgeStats(rps=10.0, error_rate=0.5, response_codes={"500": 5.0, "404": 5.0})
    assert health.edge_health(failing) is Health.FAILING and added == []
    client = EdgeStats(rps=10.0, error_rate=0.0, response_codes={"200": 7.0, "404": 3.0})
    assert health.edge_health(client) is Health.FAILING and len(added) == 1  # 30% 4xx
