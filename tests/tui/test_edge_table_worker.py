"""The edge table of a large mesh (issue 17): taken in and sorted by a worker, never on the
screen's thread (51,239 edges at 20,000 services held it 0.5-1.4 s when the table showed,
on a refresh while it showed, and for the graph's selection), each order made once per
snapshot and sort; the rows there are shown until the new ones come."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable

from meshtop import turns
from meshtop.graphview import grades_of
from meshtop.health import DEFAULT_THRESHOLDS
from meshtop.mesh import refresh
from meshtop.model import Edge, EdgeStats, MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui.widgets import edge_table
from meshtop.tui.widgets.edge_table import NO_ROWS, EdgeTable, take_in

from .test_console import until

LARGE = 100  # edges: a mesh taken in by the worker here (200 services have 400-500)


async def _snapshot(at: float = 1.8e9) -> MeshSnapshot:
    sim = Simulation(generated(200, seed=1), clock=lambda: at)
    return await refresh(sim.clusters)


class _TableOnly(App[None]):
    def __init__(self, visible: bool = True) -> None:
        super().__init__()
        self.visible = visible

    def compose(self) -> ComposeResult:
        table = EdgeTable(id="edges")
        table.display = self.visible
        yield table


Work = list[tuple[str, str]]  # (what, the thread's name)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    """Every snapshot taken in and every order made, with the thread that did it."""
    monkeypatch.setattr(edge_table, "TAKEN_AT_ONCE", LARGE)
    done: Work = []
    real_take, real_order = edge_table.take_in, edge_table._Rows.ordered

    def taken(*args: Any) -> Any:
        done.append(("take", threading.current_thread().name))
        return real_take(*args)

    def ordered(self: Any, *args: Any) -> Any:
        done.append(("sort", threading.current_thread().name))
        return real_order(self, *args)

    monkeypatch.setattr(edge_table, "take_in", taken)
    monkeypatch.setattr(edge_table._Rows, "ordered", ordered)
    return done


def _keys(table: EdgeTable) -> list[str]:
    return list(table._order.keys)


def _sorted(
    snapshot: MeshSnapshot,
    column: str = "health",
    reversed_: bool = False,
    before: MeshSnapshot | None = None,
) -> list[str]:
    """The order the table must show, worked out here (after `before`'s rows)."""
    rows = NO_ROWS
    for s in (before, snapshot):
        rows = take_in(s, rows, {}, DEFAULT_THRESHOLDS, None) if s is not None else rows
    return sorted(rows.edges, key=lambda k: rows.sort_key(column, k), reverse=reversed_)


def columns_added(monkeypatch: pytest.MonkeyPatch, table: type[DataTable[Any]]) -> list[object]:
    """Every column a table of this class adds from now on (a layout made again)."""
    added: list[object] = []
    real = table.add_column
    monkeypatch.setattr(
        table, "add_column", lambda self, *a, **k: (added.append(a), real(self, *a, **k))[1]
    )
    return added


def _on_screens_thread(done: Work) -> Work:
    return [w for w in done if w[1] == threading.main_thread().name]


async def _fitted(pilot: Pilot[None], table: EdgeTable, what: str) -> None:
    await until(pilot, lambda: table.fitted, what)


async def test_a_large_snapshot_is_sorted_off_the_screens_thread_once_per_sort(
    work: Work,
) -> None:
    snapshot = await _snapshot()
    assert len(snapshot.edges) > LARGE
    grades_of(snapshot, DEFAULT_THRESHOLDS)  # as the refresh grades a large one
    app = _TableOnly()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(EdgeTable)
        await pilot.pause()
        table.show(snapshot)
        assert work == [] and not table.fitted  # nothing done at once: by the worker
        await _fitted(pilot, table, "the rows sorted")
        assert _keys(table) == _sorted(snapshot)
        assert str(table.get_row_at(0)[0]) == "FAIL"  # worst first, as ever
        assert [w[0] for w in work] == ["take", "sort"]
        table.display = False  # `1` and `2` again: the same snapshot, the same order
        await pilot.pause()
        table.display = True
        await pilot.pause()
        assert table.fitted and len(work) == 2
        table.sort_by("rps")
        await _fitted(pilot, table, "sorted by rps")
        assert _keys(table) == _sorted(snapshot, "rps")
        assert [w[0] for w in work] == ["take", "sort", "sort"]  # not taken in again
        table.sort_by("health")  # made before for these rows: shown at once
        assert table.fitted and _keys(table) == _sorted(snapshot)
        assert len(work) == 3
    assert _on_screens_thread(work) == []


async def test_a_refresh_keeps_the_rows_shown_until_the_workers_come(work: Work) -> None:
    first, second = await _snapshot(), await _snapshot(1.8e9 + 30)
    app = _TableOnly()
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(EdgeTable)
        await pilot.pause()
        table.show(first)
        await _fitted(pilot, table, "the first snapshot's rows")
        table.move_cursor(row=5)
        shown = _keys(table)
        table.show(second)  # a refresh while the table shows
        assert table._taken is first and _keys(table) == shown  # the rows there are
        assert not table.fitted
        await _fitted(pilot, table, "the second snapshot's rows")
        assert table._taken is second
        assert _keys(table) == _sorted(second, before=first)
        assert table.cursor_row == 5  # on its row, as a refresh leaves it
    assert [w[0] for w in work] == ["take", "sort", "take", "sort"]
    assert _on_screens_thread(work) == []


async def test_the_graphs_selection_takes_nothing_in_and_is_kept_for_the_rows_to_come(
    work: Work,
) -> None:
    snapshot = await _snapshot()
    order = _sorted(snapshot)
    app = _TableOnly(visible=False)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(EdgeTable)
        table.show(snapshot)
        far = order[40]
        table.select(*far.split(">"))  # tab in the graph, the table hidden
        await pilot.pause()
        assert work == []  # hidden: nothing taken in, here or in a worker
        table.display = True  # `2`
        await _fitted(pilot, table, "the rows shown")
        assert _keys(table)[table.cursor_row] == far  # the cursor on the graph's edge
        near = order[3]
        table.select(*near.split(">"))  # shown and taken in: at once
        assert _keys(table)[table.cursor_row] == near
    assert [w[0] for w in work] == ["take", "sort"]
    assert _on_screens_thread(work) == []


async def test_the_names_are_counted_once_by_the_worker_for_any_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What makes a node's name unique is counted over every node (20,783 at 20,000
    services, 40-60 ms) by the worker; the table laid out for another width (a resize,
    or the worker's guess of a table that was not laid out yet) cuts the same names to
    it, and counted them again on the screen's thread before (26 of its samples over
    three `2`s at 20,000 services)."""
    monkeypatch.setattr(edge_table, "TAKEN_AT_ONCE", LARGE)
    counted: list[str] = []
    real = edge_table.ShortLabels.__init__

    def count(self: Any, *args: Any) -> None:
        counted.append(threading.current_thread().name)
        real(self, *args)

    monkeypatch.setattr(edge_table.ShortLabels, "__init__", count)
    snapshot = await _snapshot()
    grades_of(snapshot, DEFAULT_THRESHOLDS)
    app = _TableOnly()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EdgeTable)
        await pilot.pause()
        table.show(snapshot)
        await _fitted(pilot, table, "the rows sorted")
        wide = table._layout[1]
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: table._layout[1] != wide, "the names' columns narrower")
        await pilot.pause()
        names = [str(table.get_row_at(i)[1]) for i in range(3)]
        assert all(len(n) <= table._layout[1] for n in names)
        assert any("…" in n for n in names) or all(
            n in {w.name for w in snapshot.nodes.values()} for n in names
        )
        assert len(counted) == 1 and threading.main_thread().name not in counted, counted


@pytest.mark.parametrize("column", ["errors", "err/s", "health"])
def test_an_unknown_error_rate_is_sorted_worst_in_one_sort_or_in_pieces(
    monkeypatch: pytest.MonkeyPatch, column: str
) -> None:
    """A NaN error rate is the worst (as the stat table has it): before every error rate
    known, by errors; before every rate of 0 where failures a second tie (a rate not
    known counts none). And so wherever it is in the rows and however many pieces the
    worker's sort is cut into (NaN compared as neither less nor more: where it went
    depended on what the sort compared it with)."""
    rates = [0.1, math.nan, 0.5, 0.0, math.nan, 0.2, 0.3] * 5
    edges = {
        f"a{i}>b{i}": Edge(f"a{i}", f"b{i}", EdgeStats(rps=1.0 + i % 3, error_rate=r))
        for i, r in enumerate(rates)
    }
    rows = replace(NO_ROWS, edges=edges)
    monkeypatch.setattr(turns, "_screen", None)  # any thread: the pieces are cut
    whole = rows.ordered(column, False)
    monkeypatch.setattr(turns, "PIECE", 4)
    assert rows.ordered(column, False) == whole
    order = [edges[k].stats.error_rate for k in whole]
    unknown = [i for i, r in enumerate(order) if math.isnan(r)]
    assert len(unknown) == 10
    if column == "errors":
        assert unknown == list(range(10))
    assert max(unknown) < min(i for i, r in enumerate(order) if r == 0.0)


async def test_a_sort_asked_draws_the_header_at_once_and_the_rows_when_they_come(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker held: the header's mark moves at once (the column scrolled sideways
    too), the rows on screen are still the old order; let go, the new order is drawn."""
    snapshot = await _snapshot()
    app = _TableOnly()
    async with app.run_test(size=(60, 20)) as pilot:
        table = app.query_one(EdgeTable)
        table.show(snapshot)
        await _fitted(pilot, table, "the rows sorted")
        table.sort_by("rps")
        await _fitted(pilot, table, "sorted by rps")
        held = threading.Event()
        real = EdgeTable._taken_in
        monkeypatch.setattr(
            EdgeTable, "_taken_in", lambda self, *a: (held.wait(10), real(self, *a))
        )
        for scroll_x in (0, 12):
            table.scroll_to(x=scroll_x, animate=False)
            await pilot.pause()
            old_head, old_rows = _drawn(table, 0), [_drawn(table, y) for y in (1, 2, 3)]
            was, now = ("▼", "▲") if table.descending else ("▲", "▼")
            assert f"RPS {was}" in old_head
            table._orders.clear()  # made again by the (held) worker, not shown from before
            table.reverse_sort()  # `S`
            await pilot.pause(0.2)
            head = _drawn(table, 0)
            assert f"RPS {now}" in head and was not in head
            assert [_drawn(table, y) for y in (1, 2, 3)] == old_rows  # the old order yet
            held.set()
            await _fitted(pilot, table, "the other way round")
            assert _keys(table) == _sorted(snapshot, "rps", table.sort_reversed)
            held.clear()
        held.set()


def _drawn(table: EdgeTable, y: int) -> str:
    """The line `y` of the table as it is drawn now (what its widget would paint)."""
    return table.render_line(y).text


async def test_rows_taken_in_behind_another_tab_keep_the_columns_they_are_shown_in(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh the worker takes in while the table is hidden (`1` pressed before the
    rows came) is laid out for the width the table had on screen, not for 80 columns:
    coming back, nothing is laid out again, and the order's index of row keys (51,239
    at 20,000 services) is the one the worker made, not made again on the screen's
    thread as the rows are drawn."""
    first, second = await _snapshot(), await _snapshot(1.8e9 + 30)
    app = _TableOnly()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EdgeTable)
        await pilot.pause()
        table.show(first)
        await _fitted(pilot, table, "the first snapshot's rows")
        wide = table._layout
        added = columns_added(monkeypatch, EdgeTable)
        table.show(second)  # the worker asked while the table shows...
        table.display = False  # ...and `1` pressed before it answers
        await until(pilot, lambda: table._taken is second, "the second snapshot taken in hidden")
        assert table._layout == wide and added == []
        table.display = True  # `2`
        await _fitted(pilot, table, "the second snapshot's rows shown")
        assert table._layout == wide and added == []
        assert table._order is table._orders[("health", False)]  # the worker's, indexed there
        assert str(table.get_row_at(0)[0]) == "FAIL"
    assert _on_screens_thread(work) == []


async def test_a_table_never_shown_takes_a_large_snapshot_in_behind_the_tab_once(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before it has any rows, a hidden table has the worker take a large snapshot in
    (`take_in_behind`, once the graph is drawn), for the terminal's width: the first `2`
    shows rows at once, laid out as they were (it waited 1.2-1.4 s for them at 20,000
    services). Once it has rows, a hidden table takes nothing in until it shows."""
    first, second = await _snapshot(), await _snapshot(1.8e9 + 30)
    app = _TableOnly(visible=False)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EdgeTable)
        await pilot.pause()
        table.show(first)
        table.take_in_behind()
        table.show(second)  # a refresh while the worker takes the first in
        await until(pilot, lambda: table._taken is first, "the first snapshot taken in hidden")
        assert table.row_count == len(first.edges)
        wide = table._layout
        table.take_in_behind()
        await pilot.pause(0.2)
        assert table._taken is first and not table._working  # not again while hidden
        added = columns_added(monkeypatch, EdgeTable)
        table.display = True  # `2`: the rows there at once, then the second snapshot's
        await pilot.pause()
        assert table.row_count == len(first.edges)
        await _fitted(pilot, table, "the second snapshot's rows shown")
        assert table._taken is second and table._layout == wide and added == []
    assert _on_screens_thread(work) == []


async def test_columns_laid_out_again_keep_the_order_and_its_index(work: Work) -> None:
    """A resize lays the columns out again: the rows' order is put back as it was, its
    index of row keys with it, not made again on the screen's thread."""
    snapshot = await _snapshot()
    app = _TableOnly()
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EdgeTable)
        await pilot.pause()
        table.show(snapshot)
        await _fitted(pilot, table, "the rows sorted")
        order, wide = table._order, table._layout
        assert order._at is not None  # made by the worker
        await pilot.resize_terminal(100, 30)
        await until(pilot, lambda: table._layout != wide, "the columns laid out for 100")
        assert table._order is order and _keys(table) == _sorted(snapshot)
    assert _on_screens_thread(work) == []


async def test_taking_rows_in_and_sorting_them_gives_way_to_a_key_on_every_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's passes over every edge (51,239 at 20,000 services, 14-28 ms each on
    a slow core) give way to a key's work on the screen's thread as they go."""
    first, second = await _snapshot(), await _snapshot(1.8e9 + 30)
    rows = take_in(first, NO_ROWS, {}, DEFAULT_THRESHOLDS, None)
    ways: list[int] = []
    monkeypatch.setattr(turns, "give_way", lambda: ways.append(1))
    rows = take_in(second, rows, {}, DEFAULT_THRESHOLDS, None)
    assert len(ways) == 2  # the snapshot's edges, then the rows kept in their order
    assert set(rows.edges) == {f"{e.source}>{e.destination}" for e in second.edges}
    expected = _sorted(second, "rps", before=first)
    ways.clear()
    assert rows.ordered("rps", False) == expected
    assert len(ways) == 1  # each row's place (fewer rows than a sort in pieces takes)


async def test_the_console_takes_a_large_meshs_table_in_once_its_graph_is_drawn(
    work: Work, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the console, the hidden table of a large mesh is taken in once the graph's
    first frame is drawn, not before (the two workers would share the interpreter while
    the first frame waits): `2` then shows its rows at once."""
    from meshtop.connect import Sources
    from meshtop.tui import app as app_module
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens import main
    from meshtop.tui.widgets.graph import GraphCanvas

    from ..conftest import only

    for module in (main, app_module):  # the graph drawn by its worker, as a large one is
        monkeypatch.setattr(module, "DRAWN_AT_ONCE", LARGE)
    real, drawn = GraphCanvas.show, main.MainScreen.on_main_screen_drawn
    monkeypatch.setattr(
        GraphCanvas, "show", lambda self, *a: (work.append(("graph", "")), real(self, *a))[1]
    )
    monkeypatch.setattr(  # the worker's graph handed to the screen
        main.MainScreen,
        "on_main_screen_drawn",
        lambda self, m: (work.append(("worker's graph", "")), drawn(self, m))[1],
    )
    sim = Simulation(generated(200, seed=1), clock=lambda: 1.8e9)
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(EdgeTable)
        await until(pilot, lambda: table._taken is not None, "the table taken in hidden")
        assert [w[0] for w in work][:4] == ["worker's graph", "graph", "take", "sort"]
        assert table.size.width == 0 and table.row_count > LARGE
        app.paused = True
        await pilot.press("2")
        assert table.size.width == 160 and table.row_count > LARGE  # at once
    assert _on_screens_thread(work) == []
