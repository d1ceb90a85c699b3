"""The guarded rollout on the simulated mesh: a good canary is promoted step by step, a bad
one aborted back to the stable version at the first breach, one with no traffic aborted,
and a route someone else changed stops the rollout where it is."""

from __future__ import annotations

import asyncio

import pytest

from meshtop.errors import UsageError
from meshtop.mesh import refresh
from meshtop.rollout import Gates, Outcome, rollout, workloads_behind
from meshtop.sim.sources import Simulation

from .conftest import Clock


def _run(
    sim: Simulation, clock: Clock, to: str, gates: Gates, step: int = 25, **kw: object
) -> tuple[Outcome, list[str]]:
    said: list[str] = []
    snapshot = asyncio.run(refresh(sim.metrics, sim.control_plane, clock=clock))
    # from reviews v1 only: the canary starts at 0
    sim.set_weights("bookinfo", "reviews", {"v1": 100, "v2": 0, "v3": 0})
    clock.advance(120)

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)  # the simulated mesh's time: its traffic follows the weights

    async def go() -> Outcome:
        return await rollout(
            sim.control_plane, sim.metrics, kind="VirtualService", namespace="bookinfo",
            name="reviews", to=to, step=step, interval_s=60, gates=gates,
            nodes=workloads_behind(snapshot), sleep=sleep, say=said.append, **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    return asyncio.run(go()), said


def test_a_good_canary_is_promoted_step_by_step(sim: Simulation, clock: Clock) -> None:
    outcome, said = _run(sim, clock, "v2", Gates(max_error_rate=0.01, max_p99_ms=500))
    assert outcome.promoted and outcome.reason == "promoted: v2 takes all traffic"
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
        "all back to v1"
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
