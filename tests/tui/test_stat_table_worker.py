"""The stat tab of a large mesh (issue 17): its rows sorted again by the worker, and their
names made there, never on the screen's thread (20,783 nodes at 20,000 services: 50-400
ms a sort, 56-387 ms the names of each snapshot's rows)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from textual.app import App, ComposeResult

from meshtop.graphview import Grouping
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui.widgets import stat_table
from meshtop.tui.widgets.stat_table import StatTable, ordered

from .test_console import until

MANY = 50  # rows: sorted again by the worker here (200 services have about 200 nodes)


async def _snapshot() -> MeshSnapshot:
    sim = Simulation(generated(200, seed=1), clock=lambda: 1.8e9)
    return await refresh(sim.clusters)


class _StatsOnly(App[None]):
    def compose(self) -> ComposeResult:
        yield StatTable(id="stats")


Work = list[tuple[str, str]]  # (what, the thread's name)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    monkeypatch.setattr(stat_table, "SORTED_AT_ONCE", MANY)
    done: Work = []
    for name in ("ordered", "names"):
        real = getattr(stat_table, name)

        def counted(*args: Any, _name: str = name, _real: Any = real) -> Any:
            done.append((_name, threading.current_thread().name))
            return _real(*args)

        monkeypatch.setattr(stat_table, name, counted)
    return done


def _on_screens_thread(done: Work) -> Work:
    return [w for w in done if w[1] == threading.main_thread().name]


async def test_many_rows_are_sorted_and_named_off_the_screens_thread(work: Work) -> None:
    snapshot = await _snapshot()
    app = _StatsOnly()
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(StatTable)
        await pilot.pause()
        table.show(snapshot, Grouping.WORKLOAD)
        await until(pilot, lambda: table.ready and table.row_count > 0, "the rows")
        assert len(table.rows_by_key) > MANY
        table.move_cursor(row=7)
        await pilot.pause()
        node = table._order.keys[table.cursor_row]
        assert table.sort_by("p99") is None
        assert not table.ready  # the rows as they were, until the worker's order comes
        assert table._order.keys[table.cursor_row] == node  # the cursor on its node still
        await until(pilot, lambda: table.ready, "sorted by p99")
        assert table._order.keys == ordered(table.rows_by_key, "p99", True)
        assert table._order.keys[table.cursor_row] == node
        assert "P99▼" in [str(c.label) for c in table.columns.values()]
    assert {w[0] for w in work} == {"ordered", "names"}
    assert _on_screens_thread(work) == []
