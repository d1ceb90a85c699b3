"""Shared fixtures: a simulated mesh on a fixed clock, and where the real payloads live."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from meshtop.sim.sources import Simulation
from meshtop.sim.topology import bookinfo

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
