"""Shared fixtures: a simulated mesh on a fixed clock, and where the real payloads live."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo
from meshtop.sources.protocols import ClusterSources

ROOT = Path(__file__).resolve().parents[1]
# The shared fixtures (real payloads, see SOURCES.md there) sit beside the repository.
FIXTURES = ROOT.parent / "shared" / "fixtures"
T0 = 1_800_000_000.0  # a fixed moment, so the simulated numbers are the same every run
IN_CI = os.environ.get("CI", "").lower() == "true"


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


WRITES: list[tuple[str, str, bool]] = []  # every store write in this process: who, route, dry run


def _intent_logged(plan: Any) -> bool:
    """Whether the audit log's last lines hold this write's intent: its route and the
    weights it writes, logged before it."""
    import json

    from meshtop import audit

    log = audit.path()
    lines = log.read_text().splitlines()[-50:] if log.exists() else []
    if hasattr(plan, "json_patch"):  # an object's spec (steering.edit.EditPlan, issue 21)
        resource, after = plan.ref, dict(plan.after)
    elif not hasattr(plan, "route"):  # a PeerAuthentication's mode (posture.MtlsPlan)
        from meshtop.change.workflow import describe_mode

        said = describe_mode(plan, "")
        resource, after = said["resource"], said["after"]
    else:
        route = plan.route
        resource = f"{route.kind} {route.namespace}/{route.name}"
        after = dict(zip(plan.after.names, plan.after.weights, strict=True))
    return any(
        e.get("outcome") == "about to apply" and e.get("resource") == resource
        and e.get("after") == after
        for e in map(json.loads, lines)
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _writes_only_through_the_change_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """In every test, every write meshtop makes to a cluster or to the simulated mesh (a
    store's `apply` or `edit`, dry runs included) must come from `meshtop.change.workflow`, and a
    write (not a dry run) must have its intent in the audit log already: any other meshtop
    code that writes, or a write with no record, fails the test that made it run (a test
    may call an adapter itself). Each write is kept in `WRITES`."""
    from meshtop.sim.security import SimSecurity
    from meshtop.sim.sources import SimControlPlane
    from meshtop.sources.kubernetes import KubernetesControlPlane
    from meshtop.sources.security import KubernetesPolicies

    # a route's weights, a PeerAuthentication's mode (issue 22), an object's spec (issue 21)
    for store, method in (
        (SimControlPlane, "apply"),
        (KubernetesControlPlane, "apply"),
        (SimSecurity, "apply"),
        (KubernetesPolicies, "apply"),
        (SimControlPlane, "edit"),
        (KubernetesControlPlane, "edit"),
    ):
        real = getattr(store, method)

        def guarded(self: Any, plan: Any, *, dry_run: bool = False, _real: Any = real) -> Any:
            caller = sys._getframe(1)
            who = f"{caller.f_globals.get('__name__')}.{caller.f_code.co_qualname}"
            name = (
                plan.route.name if hasattr(plan, "route")
                else plan.policy.name if hasattr(plan, "policy") else plan.name
            )  # fmt: skip
            WRITES.append((who, name, dry_run))
            assert not who.startswith("meshtop.") or who.startswith("meshtop.change.workflow."), (
                f"{who} wrote to a store: only meshtop.change.workflow may"
            )
            if who.startswith("meshtop.") and not dry_run:
                assert _intent_logged(plan), f"{who} wrote with no intent in the audit log"
            return _real(self, plan, dry_run=dry_run)

        monkeypatch.setattr(store, method, guarded)


@pytest.fixture(autouse=True)
def _isolated_user_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads the developer's own config file or themes, or their MESHTOP_* variables."""
    home = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    # and no test writes the developer's audit log, nor reads their kubeconfig
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("KUBECONFIG", str(home / "no-kubeconfig"))
    for name in list(os.environ):
        if name.startswith("MESHTOP_") and name not in (
            "MESHTOP_PROMETHEUS_BIN",
            "MESHTOP_VICTORIA_BIN",
            "MESHTOP_UPDATE_GOLDEN",
        ):
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Simulation:
    return Simulation(bookinfo(), clock=clock)


@pytest.fixture
def fixtures() -> Path:
    if not FIXTURES.is_dir():
        message = f"the shared fixtures are not at {FIXTURES}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return FIXTURES


def need(condition: bool, why: str) -> None:
    """Skip with a reason, except under CI=true, where a missing prerequisite fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{why} (CI=true: this must run)")
    pytest.skip(why)


ClockFactory = Callable[[], Clock]


def only(
    clusters: Mapping[str, ClusterSources], *, traces: bool = False, writable: bool = False
) -> dict[str, ClusterSources]:
    """The clusters' sources without their trace backend or route store unless asked: a
    console that reads metrics and routes only, or that traces and writes too."""
    return {
        c: replace(s, traces=s.traces if traces else None, store=s.store if writable else None)
        for c, s in clusters.items()
    }
