"""A large mesh's refresh at the namespaces level (issue 17): with the same topology, the
graph's worker lays nothing out and works out no view's shape again, only the figures,
and its view is the one made afresh."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual.geometry import Size

from meshtop import graphview
from meshtop.graphview import build
from meshtop.health import DEFAULT_THRESHOLDS
from meshtop.mesh import refresh
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui import placement
from meshtop.tui.graph_state import GraphState
from meshtop.tui.placement import level_options

from ..conftest import Clock


def test_a_refresh_of_the_same_mesh_lays_out_and_shapes_nothing_again(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = Simulation(generated(1_200), clock=clock)  # above OPEN_AT_NAMESPACES workloads
    graph = GraphState(DEFAULT_THRESHOLDS)
    size = Size(160, 44)
    first = asyncio.run(refresh(sim.clusters))
    graph.make(first, size, graph.options_copy())
    assert graph.placement.zoom_shown == "namespaces"
    made: list[str] = []
    for module, name in ((placement, "layout"), (graphview, "_make_shape")):
        real = getattr(module, name)

        def counted(*args: object, _real: Any = real, _name: str = name, **kw: object) -> Any:
            made.append(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(module, name, counted)
    for _ in range(3):
        clock.advance(2)
        snapshot = asyncio.run(refresh(sim.clusters, previous=first))
        view, lay, _ = graph.make(snapshot, size, graph.options_copy())
        assert made == []  # nothing laid out, no shape made: only the figures added up
        assert lay is graph.placement.layout
    level = level_options(graph.options_copy(), snapshot, "namespaces")
    with graphview._topology_lock:
        graphview._topologies.clear()
    assert view == build(snapshot, level, graph.memory)  # as made afresh
    assert made == ["_make_shape"]
