"""Grading a large mesh each refresh (issue 17): the console's memory grades each edge
once (its health now, which `settle` is asked about only where it may keep another), and
a node takes the worst of its edges as they come, and a refresh of the same calls keys
its grades with the same tuples; the grades are what they were."""

from __future__ import annotations

import asyncio

import pytest

from meshtop import health
from meshtop.health import HealthMemory, node_health
from meshtop.mesh import refresh
from meshtop.model import EdgeStats, Health
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
