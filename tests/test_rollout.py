"""The guarded rollout on the simulated mesh: a good canary is promoted step by step, each
step taken from the stable version alone; a bad one aborted at the first breach, back to
the weights from before the rollout; one that already breaks the gates refused before the
first step; one with no traffic aborted; every step written through the change workflow,
audited as "rollout", and the whole rollout one change that can be taken back."""

from __future__ import annotations

import asyncio

import pytest

from meshtop.change.workflow import Copy, Workflow
from meshtop.errors import UsageError
from meshtop.mesh import refresh
from meshtop.rollout import Gates, Outcome, rollout, workloads_behind
from meshtop.sim.sources import Simulation

from .conftest import Clock


def _run(
    sim: Simulation,
    clock: Clock,
    to: str,
    gates: Gates,
    step: int = 25,
    start: dict[str, int] | None = None,
    **kw: object,
) -> tuple[Outcome, list[str]]:
    said: list[str] = []
    snapshot = asyncio.run(refresh(sim.clusters, clock=clock))
    # from reviews v1 only (the canary at 0), unless said otherwise
    sim.set_weights("bookinfo", "reviews", start or {"v1": 100, "v2": 0, "v3": 0})
    clock.advance(120)
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="rollout")

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)  # the simulated mesh's time: its traffic follows the weights

    async def go() -> Outcome:
        return await rollout(
            change, sim.metrics, cluster="sim", kind="VirtualService", namespace="bookinfo",
            name="reviews", to=to, step=step, interval_s=60, gates=gates,
            nodes=workloads_behind(snapshot), sleep=sleep, say=said.append, **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    return asyncio.run(go()), said


def test_a_good_canary_is_promoted_step_by_step(sim: Simulation, clock: Clock) -> None:
    outcome, said = _run(sim, clock, "v2", Gates(max_error_rate=0.01, max_p99_ms=500))
    assert outcome.promoted and outcome.reason == "promoted: v2 takes all of v1's traffic"
    assert [s.weight for s in outcome.steps] == [25, 50, 75, 100]
    actual = [s.actual for s in outcome.steps]
    assert all(a is not None for a in actual)
    assert actual[0] == pytest.approx(0.25, abs=0.05) and actual[-1] == pytest.approx(1.0)
    route = sim.route("bookinfo", "reviews")
    assert [d.weight for d in route.rules[0].destinations] == [0, 100, 0]
    assert said[1].startswith("step 1: v2 25% configured") and said[1].endswith(": ok")


def test_a_bad_canary_is_aborted_back_to_stable(sim: Simulation, clock: Clock) -> None:
    outcome, said = _run(sim, clock, "v3", Gates(max_error_rate=0.01, max_p99_ms=500))
    assert not outcome.promoted
    assert len(outcome.steps) == 1 and outcome.steps[0].breach.startswith("errors ")
    assert outcome.reason.startswith("aborted: errors") and outcome.reason.endswith(
        "back to v1=100,v2=0,v3=0"
    )
    route = sim.route("bookinfo", "reviews")
    assert [d.weight for d in route.rules[0].destinations] == [100, 0, 0]
    assert "ABORT" in said[-1]


def test_a_slow_canary_breaks_the_duration_gate(sim: Simulation, clock: Clock) -> None:
    outcome, _ = _run(sim, clock, "v3", Gates(max_error_rate=0.5, max_p99_ms=50))
    assert not outcome.promoted and outcome.steps[0].breach.startswith("p99 ")


def test_a_canary_without_traffic_is_aborted(sim: Simulation, clock: Clock) -> None:
    sim.mesh.services[("bookinfo", "reviews")] = [
        n for n in sim.mesh.services[("bookinfo", "reviews")] if not n.endswith("reviews-v2")
    ]  # v2 scaled to zero: its share goes nowhere it can be measured
    outcome, _ = _run(sim, clock, "v2", Gates(max_error_rate=0.01))
    assert not outcome.promoted and "no traffic" in outcome.reason


def test_a_canary_unknown_to_the_route_is_refused(sim: Simulation, clock: Clock) -> None:
    with pytest.raises(UsageError, match="no destination 'v9'"):
        _run(sim, clock, "v9", Gates(max_error_rate=0.01))


def _weights(sim: Simulation) -> list[int]:
    return [d.weight for d in sim.route("bookinfo", "reviews").rules[0].destinations]


def test_each_step_takes_from_the_stable_version_alone(sim: Simulation, clock: Clock) -> None:
    """`--step 50` from v1 with a third destination beside (the issue's case, v3 on
    70/20/10, wrote 31/9/60): here v2 on 70/10/20; v3 keeps its 20 at every step, and v2
    is promoted when v1 has nothing left."""
    outcome, said = _run(sim, clock, "v2", Gates(max_error_rate=0.01), step=50,
                         start={"v1": 70, "v2": 10, "v3": 20})  # fmt: skip
    assert outcome.promoted, outcome.reason
    assert [s.weight for s in outcome.steps] == [60, 80]
    assert _weights(sim) == [0, 80, 20]  # v3's 20 never moved
    assert said[0].startswith("rolling out v2 in VirtualService bookinfo/reviews: 50% of the "
                              "traffic from v1 every 1m")  # fmt: skip


def test_a_canary_already_breaking_the_gates_is_refused_before_any_step(
    sim: Simulation, clock: Clock
) -> None:
    """v3 fails ~10% of its requests: at 10% already, a rollout would move it to 60%."""
    outcome, said = _run(sim, clock, "v3", Gates(max_error_rate=0.01), step=50,
                         start={"v1": 70, "v2": 20, "v3": 10})  # fmt: skip
    assert not outcome.promoted and outcome.refused and outcome.steps == ()
    assert outcome.reason.startswith("refused: v3 already breaks the gates at v1=70,v2=20,v3=10 "
                                     "(errors ")  # fmt: skip
    assert outcome.reason.endswith("; nothing was written")
    assert _weights(sim) == [70, 20, 10] and said == []
    assert sim.route("bookinfo", "reviews").resource_version == "2"  # set_weights' only


def test_an_abort_restores_the_weights_from_before_the_rollout(
    sim: Simulation, clock: Clock
) -> None:
    """Not everything to the stable version: healthy v2 keeps its 20."""
    outcome, said = _run(sim, clock, "v3", Gates(max_error_rate=0.01), step=10,
                         start={"v1": 80, "v2": 20, "v3": 0})  # fmt: skip
    assert not outcome.promoted and outcome.reason.endswith("back to v1=80,v2=20,v3=0")
    assert _weights(sim) == [80, 20, 0]
    step = said[1]
    assert "errors " in step and " > 1.00%" in step and "ABORT" in step, step
    assert " ≤ 1.00%" not in step


def test_the_whole_rollout_is_one_change_to_take_back(sim: Simulation, clock: Clock) -> None:
    from meshtop.change.workflow import undo_plan

    outcome, _ = _run(sim, clock, "v2", Gates(max_error_rate=0.01), step=50,
                      start={"v1": 90, "v2": 0, "v3": 10})  # fmt: skip
    assert outcome.promoted and outcome.taken_back is not None
    back = undo_plan(sim.route("bookinfo", "reviews"), outcome.taken_back)
    assert back.before.weights == (0, 90, 10) and back.after.weights == (90, 0, 10)
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="undo")
    (done,) = asyncio.run(change.apply({"sim": back}))
    assert done.result == "applied" and _weights(sim) == [90, 0, 10]


def test_every_step_is_audited_as_the_rollout(sim: Simulation, clock: Clock) -> None:
    import json

    from meshtop import audit

    outcome, _ = _run(sim, clock, "v2", Gates(max_error_rate=0.01), step=50)
    assert outcome.promoted
    lines = [json.loads(x) for x in audit.path().read_text().splitlines()]
    assert {e["by"] for e in lines} == {"rollout"}
    written = [e for e in lines if e["outcome"] == "applied"]
    assert [e["after"]["v2"] for e in written] == [50, 100]
    # each write's intent logged right before it, for the same weights
    for i, entry in enumerate(lines):
        if entry["outcome"] == "applied":
            assert lines[i - 1]["outcome"] == "about to apply", lines
            assert lines[i - 1]["after"] == entry["after"]


class _FailingMetrics:
    """The simulated mesh's metrics, until `fail_after` histories: then the backend is
    gone."""

    def __init__(self, real: object, fail_after: int) -> None:
        self.real, self.left = real, fail_after

    @property
    def name(self) -> str:
        return "failing"

    async def traffic(self, window_s: float) -> object:
        return await self.real.traffic(window_s)  # type: ignore[attr-defined]

    async def history(self, source: str | None, destination: str | None, window_s: float) -> object:
        from meshtop.errors import BackendError

        self.left -= 1
        if self.left < 0:
            raise BackendError("Prometheus at http://prom:9090 did not answer within 10s")
        return await self.real.history(source, destination, window_s)  # type: ignore[attr-defined]


def test_metrics_that_fail_mid_rollout_abort_it_back_to_the_weights_from_before(
    sim: Simulation, clock: Clock
) -> None:
    """No canary is judged blind: the route goes back, and the rollout can be undone."""
    said: list[str] = []
    snapshot = asyncio.run(refresh(sim.clusters, clock=clock))
    sim.set_weights("bookinfo", "reviews", {"v1": 80, "v2": 20, "v3": 0})
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="rollout")

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    outcome = asyncio.run(
        rollout(
            change, _FailingMetrics(sim.metrics, 0), cluster="sim", kind="VirtualService",  # type: ignore[arg-type]
            namespace="bookinfo", name="reviews", to="v3", step=10, interval_s=60,
            gates=Gates(max_error_rate=0.5), nodes=workloads_behind(snapshot), sleep=sleep,
            say=said.append,
        )
    )  # fmt: skip
    assert not outcome.promoted and outcome.steps[0].breach.startswith("the metrics failed: ")
    assert outcome.reason.endswith("back to v1=80,v2=20,v3=0"), outcome.reason
    assert _weights(sim) == [80, 20, 0]


def test_a_rollout_stopped_between_two_steps_says_where_it_left_the_route(
    sim: Simulation, clock: Clock
) -> None:
    """`s` in the dialog: the route stays as the last step left it, and the steps so
    far are one change to take back."""
    from meshtop.rollout import Stopped

    snapshot = asyncio.run(refresh(sim.clusters, clock=clock))
    sim.set_weights("bookinfo", "reviews", {"v1": 100, "v2": 0, "v3": 0})
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="rollout")

    async def sleep(seconds: float) -> None:
        raise Stopped

    outcome = asyncio.run(
        rollout(
            change, sim.metrics, cluster="sim", kind="VirtualService", namespace="bookinfo",
            name="reviews", to="v2", step=25, interval_s=60, gates=Gates(max_error_rate=0.01),
            nodes=workloads_behind(snapshot), sleep=sleep, say=lambda _: None,
        )
    )  # fmt: skip
    assert outcome.reason == "stopped by you: the route is left at v1=75,v2=25,v3=0"
    assert _weights(sim) == [75, 25, 0]
    assert outcome.taken_back is not None and outcome.taken_back.before.weights == (100, 0, 0)
