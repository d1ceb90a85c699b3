"""What a view is made of is worked out once per topology (issue 17): a refresh of the same
mesh (the same nodes, the same calls in the same order) adds up its figures into the boxes
and lines of the view before, under the same options; a new call, a new node, other
options or a fault's mark make it again. The views are the same as made afresh."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from meshtop import graphview
from meshtop.graphview import Grouping, ViewOptions, build
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo, generated
from meshtop.steering.edit import fault
from meshtop.tui.placement import level_options

from .conftest import Clock
from .test_sim_policy import _change


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[ViewOptions]:
    """The options of each shape worked out."""
    shapes: list[ViewOptions] = []
    real = graphview._make_shape

    def counted(
        snapshot: MeshSnapshot, options: ViewOptions, faults: dict[str, str]
    ) -> graphview.Shape:
        shapes.append(options)
        return real(snapshot, options, faults)

    monkeypatch.setattr(graphview, "_make_shape", counted)
    return shapes


def _afresh(snapshot: MeshSnapshot, options: ViewOptions) -> graphview.GraphView:
    with graphview._topology_lock:
        graphview._topologies.clear()
    return build(snapshot, options)


def test_a_refresh_of_the_same_mesh_makes_no_shape_again(
    clock: Clock, made: list[ViewOptions]
) -> None:
    sim = Simulation(generated(300), clock=clock)
    first = asyncio.run(refresh(sim.clusters))
    level = level_options(ViewOptions(), first, "namespaces")
    options = (ViewOptions(), level, ViewOptions(grouping=Grouping.APP, filter="error>1%"))
    for o in options:
        build(first, o)
    assert len(made) == 3
    clock.advance(2)
    second = asyncio.run(refresh(sim.clusters, previous=first))
    assert second.edges != first.edges  # other figures, the same calls
    views = [build(second, o) for o in options]
    assert len(made) == 3
    for o, view in zip(options, views, strict=True):
        again = _afresh(second, o)
        assert view == again and list(view.nodes) == list(again.nodes)
        assert list(view.edges) == list(again.edges)
    # the namespaces level's figures are the second snapshot's own
    rps = sum(e.stats.rps for e in views[1].edges.values())
    assert rps == pytest.approx(sum(e.stats.rps for e in second.edges if _drawn(e.key, level)))


def _drawn(key: tuple[str, str], level: ViewOptions) -> bool:
    """Whether a call is drawn at the namespaces level: not inside one namespace's box."""
    a, b = (k.split("/") for k in key)
    return (a[0], a[1]) != (b[0], b[1]) or "unknown" in (a[1], b[1])


def test_a_new_call_a_fault_or_other_options_make_the_shape_again(
    sim: Simulation, clock: Clock, made: list[ViewOptions]
) -> None:
    o = ViewOptions()
    build(asyncio.run(refresh(sim.clusters)), o)
    sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 50, "v3": 50})  # v1's call goes
    clock.advance(2)
    fewer = asyncio.run(refresh(sim.clusters))
    view = build(fewer, o)
    assert len(made) == 2 and view == _afresh(fewer, o)
    build(fewer, replace(o, collapsed={"bookinfo"}))
    assert len(made) == 4  # (and the one made afresh)
    _change(sim, "VirtualService", "ratings", lambda obj: fault(obj, "", abort=(503, 40.0)),
            by="fault")  # fmt: skip
    clock.advance(2)
    faulted = asyncio.run(refresh(sim.clusters))
    view = build(faulted, o)
    assert len(made) == 5 and view == _afresh(faulted, o)
    assert any(e.fault for e in view.edges.values())


def test_bookinfo_views_are_as_made_afresh_over_refreshes(clock: Clock) -> None:
    sim = Simulation(bookinfo(), clock=clock)
    previous = None
    for _ in range(3):
        snapshot = asyncio.run(refresh(sim.clusters, previous=previous))
        for grouping in Grouping:
            o = ViewOptions(grouping=grouping)
            assert build(snapshot, o) == _afresh(snapshot, o)
        previous = snapshot
        clock.advance(2)
