"""A change the control plane says was made to a route (its managed fields' time and
generation; here the simulated control plane's) is marked on the detail's charts with a
glyph of its own, beside the audit log's weight shifts (issue 19)."""

from __future__ import annotations

from datetime import datetime

from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp

from ..conftest import Clock, only
from .test_detail import _edge_history


async def test_a_route_changed_five_minutes_ago_is_marked_with_its_generation(
    sim: Simulation, clock: Clock
) -> None:
    clock.advance(-300)
    sim.set_weights("bookinfo", "reviews", {"v1": 50, "v2": 0, "v3": 50})  # an operator's
    changed = clock()
    clock.advance(300)
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 80)) as pilot:
        history = await _edge_history(app, pilot)
    at = datetime.fromtimestamp(changed).strftime("%H:%M")
    assert f"◆ {at} VirtualService reviews generation 2 (kubectl)" in history
    lines = history.splitlines()
    marks = [line for line in lines if "│" in line and "◆" in line]
    assert len(marks) == 3  # requests, errors, latency
    ruler = next(line for line in lines if "-6m" in line and "-4m" in line)
    assert all(ruler.index("-6m") < m.index("◆") < ruler.index("-4m") + 2 for m in marks)
    assert "▲" not in history  # not meshtop's: no audit line


async def test_a_control_plane_that_cannot_say_is_said_in_place(sim: Simulation) -> None:
    from meshtop.errors import BackendError

    async def refused() -> list[object]:
        raise BackendError("cannot list deployments: forbidden")

    sim.planes[""].changes = refused  # type: ignore[method-assign]
    app = MeshtopApp(Sources(only(sim.clusters), True, sim.clock))
    async with app.run_test(size=(120, 80)) as pilot:
        history = await _edge_history(app, pilot)
    assert "no control plane markers: cannot list deployments: forbidden" in history
    assert "Latency" in history
