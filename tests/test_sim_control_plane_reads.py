"""The simulated control plane says its workloads and circuit breakers again without
reading them again while they are the same (issue 17: 20,783 workloads and 617
DestinationRules read each refresh at 20,000 services, on the screen's thread), and
reads them again as soon as they change."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from meshtop.sim import sources
from meshtop.sim.sources import Simulation
from meshtop.steering.edit import circuit_breaker

from .test_sim_policy import DR, _run


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    done: list[str] = []
    for name in ("_node", "breakers_of"):
        real = getattr(sources, name)

        def counted(*args: Any, _name: str = name, _real: Any = real) -> Any:
            done.append(_name)
            return _real(*args)

        monkeypatch.setattr(sources, name, counted)
    return done


def test_the_same_objects_are_said_again_without_reading_them(
    sim: Simulation, reads: list[str]
) -> None:
    plane = sim.planes[""]
    first = asyncio.run(plane.workloads()), asyncio.run(plane.breakers())
    assert {"_node", "breakers_of"} <= set(reads)
    reads.clear()
    again = asyncio.run(plane.workloads()), asyncio.run(plane.breakers())
    assert reads == []
    assert again == first and all(a is b for a, b in zip(again[0], first[0], strict=True))


def test_a_rule_written_or_a_workload_changed_is_read_again(
    sim: Simulation, reads: list[str]
) -> None:
    plane = sim.planes[""]
    assert asyncio.run(plane.breakers()) == []
    workloads = asyncio.run(plane.workloads())
    obj = asyncio.run(plane.get(DR, "bookinfo", "reviews"))
    plan = circuit_breaker(obj, "", subset="v3", max_connections=1, max_pending=1)
    assert _run(sim, plan, by="resilience").result == "applied"
    (breaker,) = asyncio.run(plane.breakers())
    assert (breaker.host, breaker.subset, breaker.max_connections) == ("reviews", "v3", 1)
    assert asyncio.run(plane.workloads()) == workloads  # no workload changed
    w = next(iter(sim.mesh.workloads.values()))
    moved = replace(w.workload, version="v9")
    sim.mesh.workloads[w.id] = replace(w, workload=moved)
    said = asyncio.run(plane.workloads())
    assert moved in said and w.workload not in said and len(said) == len(workloads)
