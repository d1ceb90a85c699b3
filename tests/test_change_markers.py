"""When the control plane says a route or a Deployment changed (issue 19): the latest
managed field written to the object itself, its generation, and who wrote it; the
simulated control plane's route changes; and the moments marked on a plot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from meshtop.detail import config_in
from meshtop.plot import CONFIG_MARK, MARK, marks_line
from meshtop.sim.sources import Simulation
from meshtop.sources.kubernetes import config_change
from meshtop.sources.protocols import ConfigChange

from .conftest import Clock


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_latest_write_to_the_object_is_its_change_and_a_status_write_is_not() -> None:
    t0 = 1_800_000_000
    item = {"metadata": {
        "name": "reviews", "namespace": "bookinfo", "generation": 4,
        "creationTimestamp": _stamp(t0),
        "managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "time": _stamp(t0)},
            {"manager": "kubectl-edit", "operation": "Update", "time": _stamp(t0 + 600)},
            # the controller's progress: later, but no change of configuration
            {"manager": "kube-controller-manager", "operation": "Update",
             "subresource": "status", "time": _stamp(t0 + 900)},
        ],
    }}  # fmt: skip
    change = config_change(item, "Deployment", "east")
    assert change == ConfigChange(t0 + 600, "Deployment", "east", "bookinfo", "reviews", 4,
                                  "kubectl-edit")  # fmt: skip
    assert change.resource == "Deployment bookinfo/reviews"


def test_without_managed_fields_the_creation_is_the_change_and_nonsense_is_none() -> None:
    created = {"metadata": {"name": "r", "namespace": "n", "creationTimestamp": _stamp(1e9)}}
    assert config_change(created, "HTTPRoute", "") == ConfigChange(
        1e9, "HTTPRoute", "", "n", "r", 0, ""
    )
    hostile = {"metadata": {"name": "r", "managedFields": [{"time": "yesterday"}, "x"],
                            "generation": "7"}}  # fmt: skip
    assert config_change(hostile, "HTTPRoute", "") is None


def test_the_simulated_control_plane_says_when_each_route_changed(
    sim: Simulation, clock: Clock
) -> None:
    assert asyncio.run(sim.planes[""].changes()) == []  # the routes as loaded
    sim.set_weights("bookinfo", "reviews", {"v1": 50, "v2": 0, "v3": 50})
    clock.advance(120)
    sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 0, "v3": 100})
    said = asyncio.run(sim.planes[""].changes())
    assert [(c.time, c.resource, c.generation, c.manager) for c in said] == [
        (clock() - 120, "VirtualService bookinfo/reviews", 2, "kubectl"),
        (clock(), "VirtualService bookinfo/reviews", 3, "kubectl"),
    ]


def test_a_change_meshtop_audited_is_marked_once() -> None:
    from meshtop.audit import WeightChange

    vs = ConfigChange(1000.0, "VirtualService", "", "bookinfo", "reviews", 3, "meshtop")
    other = ConfigChange(2000.0, "Deployment", "", "bookinfo", "reviews-v3", 2, "kubectl")
    late = ConfigChange(9000.0, "Deployment", "", "bookinfo", "reviews-v3", 3, "kubectl")
    audited = [WeightChange(1001.5, "VirtualService bookinfo/reviews", (), (), "console", "")]
    wanted = ["VirtualService bookinfo/reviews", "Deployment bookinfo/reviews-v3"]
    assert config_in(wanted, 0, 5000, [late, other, vs], audited) == (other,)
    assert config_in(wanted, 0, 5000, [vs]) == (vs,)
    assert config_in(["Deployment bookinfo/ratings-v1"], 0, 5000, [other]) == ()


def test_each_mark_has_its_glyph_and_a_weight_shift_wins_a_shared_column() -> None:
    times = [float(t) for t in range(0, 601, 60)]  # 11 points
    line = marks_line(times, 8 + 11, [(300.0, CONFIG_MARK), 600.0])
    cells = line[8:]
    assert cells.index(CONFIG_MARK) == 5 and cells.index(MARK) == 10
    shared = marks_line(times, 8 + 11, [(300.0, CONFIG_MARK), 300.0])[8:]
    assert shared.count(MARK) == 1 and CONFIG_MARK not in shared
