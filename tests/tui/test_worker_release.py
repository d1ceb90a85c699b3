"""A finished worker holds no snapshot (issue 17): Textual keeps a finished worker as
cyclic garbage with the arguments it was started with until a full collection, which at
20,000 services scans ~400,000 objects (0.25-0.4 s) every ~10 s. The snapshot a worker
took is freed by reference counting as soon as the next one is taken in."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from textual.app import App, ComposeResult

from meshtop.config import Settings
from meshtop.connect import Sources
from meshtop.graphview import Grouping
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui.app import MeshtopApp
from meshtop.tui.screens import main
from meshtop.tui.widgets import edge_table
from meshtop.tui.widgets.stat_table import StatTable

from ..conftest import Clock, only
from .test_console import keys, settled, until


@pytest.fixture
def no_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def _snapshots(n: int) -> list[MeshSnapshot]:
    t = [1.8e9]
    sim = Simulation(generated(60, seed=1), clock=lambda: t[0])
    found = []
    for _ in range(n):
        found.append(await refresh(sim.clusters))
        t[0] += 2
    return found


class _StatsOnly(App[None]):
    def compose(self) -> ComposeResult:
        yield StatTable(id="stats")


async def test_a_stat_tables_old_snapshot_is_freed_without_a_collection(
    no_collection: None,
) -> None:
    snapshots = await _snapshots(3)
    app = _StatsOnly()
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(StatTable)
        await pilot.pause()
        olds = []
        while snapshots:
            snapshot = snapshots.pop(0)
            olds.append(weakref.ref(snapshot))
            table.show(snapshot, Grouping.WORKLOAD)
            del snapshot
            await until(pilot, lambda: not table._working, "the rows")
        assert table._taken is not None and table._taken[0] is olds[-1]()
        assert [o() is None for o in olds[:-1]] == [True, True]


async def test_the_consoles_old_snapshots_are_freed_without_a_collection(
    no_collection: None, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every snapshot drawn and listed by the workers, as at 20,000 services
    monkeypatch.setattr(main, "DRAWN_AT_ONCE", 0)
    monkeypatch.setattr(edge_table, "TAKEN_AT_ONCE", 0)
    sim = Simulation(generated(60, seed=1), clock=clock)
    app = MeshtopApp(Sources(only(sim.clusters), True, clock), settings=Settings(refresh_s=60))
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.snapshot is not None, "the first snapshot")
        await keys(pilot, "2")
        olds = []
        for _ in range(4):
            await settled(pilot)
            olds.append(weakref.ref(app.snapshot))
            clock.advance(2)
            await keys(pilot, "r")
            await until(pilot, lambda: app.snapshot is not olds[-1](), "the next snapshot")
        await settled(pilot)
        assert app.main._drawing is False
        assert [o() is None for o in olds] == [True] * 4
