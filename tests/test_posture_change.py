"""A PeerAuthentication's mode changed through the one change workflow, on the simulated
mesh: checked first, audited before and after, written only if the policy is as it was
read, undone from the policy as it is now; and the traffic obeys the change in the next
refresh (plain text into STRICT is refused). `meshtop mtls`'s refusals are one line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from meshtop import audit
from meshtop.change.workflow import PolicyCopy, Workflow, undo_mode
from meshtop.errors import ConflictError
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.posture import MtlsMode, MtlsPlan, PeerAuthentication, plan_mode
from meshtop.sim.sources import Simulation

from .conftest import WRITES, Clock

PRODUCTPAGE = "Kubernetes/bookinfo/productpage-v1"
UNKNOWN = "unknown/unknown/unknown"


def _snap(sim: Simulation) -> MeshSnapshot:
    return asyncio.run(refresh(sim.clusters, window_s=60, clock=sim.clock))


def _change(sim: Simulation, by: str = "mtls") -> Workflow:
    return Workflow({"": PolicyCopy("", sim.security[""], "the simulated mesh")}, by=by)


def _plan(sim: Simulation, mode: MtlsMode, workload: str = "") -> MtlsPlan:
    config = asyncio.run(sim.security[""].security())
    return plan_mode(_snap(sim), config, "", "bookinfo", workload, mode)


def _mode(sim: Simulation, name: str = "default") -> MtlsMode | None:
    now = sim.security[""].policies()
    return next((p.mode for p in now if (p.namespace, p.name) == ("bookinfo", name)), None)


def _refused(sim: Simulation) -> float:
    edge = _snap(sim).edge(UNKNOWN, PRODUCTPAGE)
    assert edge is not None
    return edge.stats.error_rate


def test_strict_is_checked_audited_written_and_obeyed(sim: Simulation, clock: Clock) -> None:
    WRITES.clear()
    plan = _plan(sim, MtlsMode.STRICT)
    change = _change(sim)
    (checked,) = asyncio.run(change.apply({"": plan}, dry_run=True))
    assert (checked.result, _mode(sim)) == ("checked", MtlsMode.PERMISSIVE)
    clock.advance(10)
    (done,) = asyncio.run(change.apply({"": plan}))
    assert done.result == "applied" and done.applied is not None
    assert (done.applied.mode, done.applied.resource_version) == (MtlsMode.STRICT, "2")
    assert _mode(sim) is MtlsMode.STRICT
    assert [(who.removeprefix("meshtop.change.workflow."), dry) for who, _, dry in WRITES] == [
        ("Workflow._send", True),
        ("Workflow._send", True),
        ("Workflow._send", False),
    ]
    log = [json.loads(line) for line in audit.path().read_text().splitlines()]
    assert [e["outcome"] for e in log] == [
        "dry run: the server accepted it",
        "about to apply",
        "applied",
    ]
    assert log[-1]["resource"] == "PeerAuthentication bookinfo/default"
    assert (log[-1]["before"], log[-1]["after"], log[-1]["by"]) == (
        {"mode": "PERMISSIVE", "selector": {}},
        {"mode": "STRICT", "selector": {}},
        "mtls",
    )
    assert (log[-1]["resource_version"], log[-1]["new_resource_version"]) == ("1", "2")
    assert _refused(sim) == 1.0  # the next refresh: the unmeshed client's calls fail


def test_a_policy_changed_since_the_read_is_a_conflict(sim: Simulation) -> None:
    plan = _plan(sim, MtlsMode.STRICT)
    sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.DISABLE))
    (outcome,) = asyncio.run(_change(sim).apply({"": plan}))
    assert outcome.result.startswith("conflict: PeerAuthentication bookinfo/default changed")
    assert isinstance(outcome.error, ConflictError)
    assert _mode(sim) is MtlsMode.DISABLE  # the other writer's, left as it is


def test_undo_sets_it_back_from_the_policy_as_it_is_now(sim: Simulation, clock: Clock) -> None:
    plan = _plan(sim, MtlsMode.STRICT)
    (done,) = asyncio.run(_change(sim).apply({"": plan}))
    clock.advance(30)
    back = undo_mode(done.applied, plan)
    assert "-   mode: STRICT" in back.preview() and "+   mode: PERMISSIVE" in back.preview()
    (undone,) = asyncio.run(_change(sim, by="undo").apply({"": back}))
    assert undone.result == "applied"
    assert _mode(sim) is MtlsMode.PERMISSIVE
    assert _refused(sim) == 0.0


def test_undo_of_a_creation_deletes_it(sim: Simulation, clock: Clock) -> None:
    plan = _plan(sim, MtlsMode.STRICT, "productpage-v1")
    assert plan.action == "create"
    (done,) = asyncio.run(_change(sim).apply({"": plan}))
    assert _mode(sim, "productpage-v1-mtls") is MtlsMode.STRICT
    assert _refused(sim) == 1.0
    back = undo_mode(done.applied, plan)
    assert back.action == "delete"
    assert back.preview()[0] == (
        "PeerAuthentication bookinfo/productpage-v1-mtls (resourceVersion 2) is deleted: the "
        "wider policies' modes apply again"
    )
    clock.advance(30)
    (undone,) = asyncio.run(_change(sim, by="undo").apply({"": back}))
    assert (undone.result, undone.applied) == ("applied", None)
    assert _mode(sim, "productpage-v1-mtls") is None
    assert _refused(sim) == 0.0
    assert audit.path().read_text().splitlines()[-1].count('"after": null') == 1


def test_undo_leaves_a_policy_someone_changed_since(sim: Simulation) -> None:
    plan = _plan(sim, MtlsMode.STRICT)
    asyncio.run(_change(sim).apply({"": plan}))
    now = sim.security[""].set_policy(PeerAuthentication("bookinfo", "default", MtlsMode.DISABLE))
    with pytest.raises(ConflictError, match="changed since meshtop's change \\(now DISABLE\\)"):
        undo_mode(now, plan)


def test_a_policy_write_from_anywhere_else_in_meshtop_fails_the_test(sim: Simulation) -> None:
    plan = _plan(sim, MtlsMode.STRICT)
    source = "async def sneak(store, plan):\n    return await store.apply(plan)\n"
    scope: dict[str, object] = {"__name__": "meshtop.tui.sneaky"}
    exec(compile(source, "meshtop/tui/sneaky.py", "exec"), scope)
    with pytest.raises(AssertionError, match=r"meshtop\.tui\.sneaky\.sneak wrote to a store"):
        asyncio.run(scope["sneak"](sim.security[""], plan))  # type: ignore[operator]
    assert _mode(sim) is MtlsMode.PERMISSIVE


def meshtop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshtop", *args], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["mtls", "bookinfo", "--demo"], "give one of --strict and --permissive"),
        (["mtls", "bookinfo", "--strict", "--permissive", "--demo"],
         "give one of --strict and --permissive"),
        (["mtls", "book/info/x", "--strict", "--demo"], "give NAMESPACE or NAMESPACE/WORKLOAD"),
        (["mtls", "Bookinfo", "--strict", "--demo"], "is not a Kubernetes namespace"),
        (["--read-only", "mtls", "bookinfo", "--strict", "--demo", "--yes"],
         "read-only: meshtop writes nothing here"),
        (["mtls", "bookinfo", "--strict", "--demo"],
         "not a terminal to ask on: give --yes to apply, or --dry-run"),
        (["mtls", "bookinfo/nothing", "--strict", "--demo", "--yes"],
         "no workload nothing in namespace bookinfo"),
    ],
)  # fmt: skip
def test_mtls_refusals_are_one_line_exit_2(args: list[str], said: str) -> None:
    result = meshtop(*args)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and result.stderr.count("\n") == 1
    assert not audit.path().exists() or "applied" not in audit.path().read_text()


def test_mtls_on_the_demo_previews_what_strict_would_break() -> None:
    result = meshtop("mtls", "bookinfo", "--strict", "--demo", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "PeerAuthentication bookinfo/default (resourceVersion 1)",
        "-   mode: PERMISSIVE",
        "+   mode: STRICT",
    ]
    assert "STRICT would refuse 1 plaintext caller (unknown):" in lines
    assert lines[-1] == "dry run: the server accepted the change; nothing was written"
    same = meshtop("mtls", "bookinfo", "--permissive", "--demo", "--yes")
    assert same.stdout.splitlines()[-1] == "nothing to change: bookinfo is PERMISSIVE already"
