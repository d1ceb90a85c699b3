"""`meshtop edge` marks what the control plane says was changed (issue 19): a route's
change five minutes ago is a ◆ on its charts and a line under the requests, as on the
console's edge detail."""

from __future__ import annotations

from datetime import datetime

import pytest
from typer.testing import CliRunner

from meshtop import connect
from meshtop.cli import app
from meshtop.sim.sources import Simulation

from .conftest import Clock


def test_meshtop_edge_marks_a_route_changed_five_minutes_ago(
    sim: Simulation, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.advance(-300)
    sim.set_weights("bookinfo", "reviews", {"v1": 50, "v2": 0, "v3": 50})  # an operator's
    changed = clock()
    clock.advance(300)
    monkeypatch.setattr(connect, "simulation", lambda *args, **kwargs: sim)
    result = CliRunner().invoke(app, ["edge", "--demo", "productpage-v1", "reviews-v3"])
    assert result.exit_code == 0, result.output
    at = datetime.fromtimestamp(changed).strftime("%H:%M")
    assert f"◆ {at} VirtualService reviews generation 2 (kubectl)" in result.output
    marks = [line for line in result.output.splitlines() if "│" in line and "◆" in line]
    assert len(marks) == 3, result.output  # requests, errors, latency
