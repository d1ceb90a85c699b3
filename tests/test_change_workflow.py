"""The change workflow is the only code that writes to a cluster: every writer of the
console (the dialog, all copies, its rollout, `:undo`) and the rollout go through it
(tests/conftest.py guards every test; this one checks the guard sees them all), and a
write with no audit record is never made."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from meshtop.canary import Plan, Split, parse_set
from meshtop.change.workflow import Copy, Workflow
from meshtop.errors import UsageError
from meshtop.sim.sources import Simulation

from .conftest import WRITES


def _plan(sim: Simulation, weights: str) -> Plan:
    route = sim.route("bookinfo", "reviews")
    before = Split.of(route, route.rules[0])
    return Plan(route, 0, before, parse_set(weights, before))


def _weights(sim: Simulation) -> list[int]:
    return [d.weight for d in sim.route("bookinfo", "reviews").rules[0].destinations]


def test_the_guard_sees_every_write_and_who_made_it(sim: Simulation) -> None:
    WRITES.clear()
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="shift")
    (outcome,) = asyncio.run(change.apply({"sim": _plan(sim, "v1=50,v2=40,v3=10")}))
    assert outcome.result == "applied"
    assert [(who.removeprefix("meshtop.change.workflow."), dry) for who, _, dry in WRITES] == [
        ("Workflow._send", True),  # the server's check
        ("Workflow._send", False),  # the write itself
    ]
    assert all(who.startswith("meshtop.change.workflow.Workflow.") for who, _, _ in WRITES)


def test_a_write_from_anywhere_else_in_meshtop_fails_the_test(sim: Simulation) -> None:
    """What the guard does to a writer that goes around the workflow (as `:undo` did)."""
    plan = _plan(sim, "v1=50,v2=40,v3=10")
    source = "async def sneak(store, plan):\n    return await store.apply(plan)\n"
    scope: dict[str, object] = {"__name__": "meshtop.tui.sneaky"}
    exec(compile(source, "meshtop/tui/sneaky.py", "exec"), scope)
    with pytest.raises(AssertionError, match=r"meshtop\.tui\.sneaky\.sneak wrote to a store"):
        asyncio.run(scope["sneak"](sim.control_plane, plan))  # type: ignore[operator]
    assert _weights(sim) == [70, 20, 10]


def test_an_audit_log_that_cannot_be_written_means_nothing_is_written(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked / "state"))  # under a file: no log
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="shift")
    with pytest.raises(UsageError, match=r"cannot write the audit log .*: nothing was written"):
        asyncio.run(change.apply({"sim": _plan(sim, "v1=50,v2=40,v3=10")}))
    assert _weights(sim) == [70, 20, 10]


def test_a_write_whose_intent_is_not_logged_fails_the_test(sim: Simulation) -> None:
    """Even from inside the workflow: `_write` called without `apply` (no intent, no
    server check) is caught by the guard."""
    change = Workflow({"sim": Copy("sim", sim.control_plane, "the simulated mesh")}, by="shift")
    plan = _plan(sim, "v1=50,v2=40,v3=10")
    with pytest.raises(AssertionError, match="wrote with no intent in the audit log"):
        asyncio.run(change._write("sim", plan))
    assert _weights(sim) == [70, 20, 10]
