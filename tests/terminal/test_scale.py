"""The console at scale (issue 17): what it keeps and draws is sized by what is on screen,
not by the mesh or the layout's area, and a large mesh opens answering every key."""

from __future__ import annotations

import re
import time
import tracemalloc
from typing import Any

import pytest
from textual.app import App, ComposeResult

from meshtop.layout import Box, Layout
from meshtop.mesh import refresh
from meshtop.model import MeshSnapshot
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import generated
from meshtop.tui.widgets import edge_table
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.graph import STROKES_KEPT, _index

from .term import Terminal

FAR = 100_000  # cells: a layout as wide and as tall as a mesh of several thousand services


def test_the_drawing_index_grows_with_the_lines_not_with_the_area_they_cross() -> None:
    a, b = "east/shop/a", "east/shop/b"
    # one call from a box at the top left to one 100,000 columns right, 100,000 rows down
    route = ((5, 1), (FAR, 1), (FAR, FAR), (FAR + 5, FAR))
    lay = Layout(
        nodes={a: Box(0, 0, 5, 3), b: Box(FAR + 6, FAR - 1, 5, 3)},
        groups={},
        routes={(a, b): route},
        order={a: (0, 0), b: (1, 0)},
        group_order=(),
        width=FAR + 12,
        height=FAR + 3,
    )
    tracemalloc.start()
    try:
        index = _index(lay)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"{peak / 2**20:.1f} MiB for one line"  # cell by cell: ~50 MiB
    # and every cell of the line is still drawn right, wherever the screen is
    assert index.cells(1, FAR - 1, FAR + 1) == {FAR - 1: (2 | 8, [(a, b)]), FAR: (4 | 8, [(a, b)])}
    assert index.cells(FAR // 2, FAR - 2, FAR + 3) == {FAR: (1 | 4, [(a, b)])}
    assert index.cells(FAR, FAR, FAR + 2) == {FAR: (1 | 2, [(a, b)]), FAR + 1: (2 | 8, [(a, b)])}
    assert index.arrows[FAR] == {FAR + 5: ("▶", (a, b))}
    assert index.label((a, b)) == (6, FAR - 1, 1)  # on its longer stretch, after the source
    # a row's cells as drawn, kept for the rows drawn lately only
    assert index.strokes(1, FAR - 1, FAR + 1) == ((FAR - 1, "─", ((a, b),)), (FAR, "┐", ((a, b),)))
    for y in range(2, FAR, FAR // (2 * STROKES_KEPT)):
        assert index.strokes(y, FAR - 1, FAR + 2) == ((FAR, "│", ((a, b),)),)
    assert len(index.drawn) == STROKES_KEPT


async def _snapshot(services: int, at: float = 1.8e9) -> MeshSnapshot:
    sim = Simulation(generated(services, seed=1), clock=lambda: at)
    return await refresh(sim.clusters)


class _TableOnly(App[None]):
    def __init__(self, visible: bool) -> None:
        super().__init__()
        self.visible = visible

    def compose(self) -> ComposeResult:
        table = EdgeTable(id="edges")
        table.display = self.visible
        yield table


async def test_the_edge_table_makes_only_the_rows_it_draws(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snapshot = await _snapshot(1000)  # 2,438 edges
    made: list[Any] = []
    real = edge_table._cells

    def counted(edge: Any, *args: Any) -> Any:
        made.append(edge.key)
        return real(edge, *args)

    monkeypatch.setattr(edge_table, "_cells", counted)
    # taken in at once, as a snapshot under the worker's size is (tests/tui/
    # test_edge_table_worker.py has the worker's rows)
    monkeypatch.setattr(edge_table, "TAKEN_AT_ONCE", len(snapshot.edges))
    hidden = _TableOnly(visible=False)
    async with hidden.run_test(size=(120, 30)) as pilot:
        table = hidden.query_one(EdgeTable)
        table.show(snapshot)
        await pilot.pause()
        assert table.row_count == len(snapshot.edges)  # counted, when asked
        assert made == []  # but no row made: none is drawn

    shown = _TableOnly(visible=True)
    async with shown.run_test(size=(120, 30)) as pilot:
        table = shown.query_one(EdgeTable)
        await pilot.pause()
        table.show(snapshot)
        await pilot.pause()
        assert table.fitted
        assert str(table.get_row_at(0)[0]) == "FAIL"  # worst first, as ever
        assert 0 < len(set(made)) <= 40, f"{len(set(made))} rows made for a 30-row screen"
        made.clear()
        table.show(await _snapshot(1000, 1.8e9 + 10))  # a refresh: the rows on screen again
        await pilot.pause()
        assert 0 < len(set(made)) <= 40
        made.clear()
        await pilot.press("ctrl+end")  # the last row: made when reached
        await pilot.pause()
        assert table.cursor_row == table.row_count - 1
        assert 0 < len(set(made)) <= 40


def test_the_simulator_works_each_split_out_once_until_what_it_reads_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meshtop.sim import traffic
    from meshtop.sim.topology import bookinfo

    sim = Simulation(bookinfo(), clock=lambda: 1.8e9)
    worked: list[Any] = []
    real = traffic.split

    def counted(mesh: Any, call: Any, routes: Any = None) -> Any:
        worked.append(call)
        return real(mesh, call, routes)

    monkeypatch.setattr(traffic, "split", counted)
    first = sim.flows()
    assert worked  # the first refresh works every call's split out
    worked.clear()
    assert sim.flows() == first  # the same moment, the same traffic
    assert worked == []  # and no split worked out again: a live mesh's refresh is lighter
    # ratings scaled to zero (a new list of workloads): its callers' splits again
    sim.mesh.services[("bookinfo", "ratings")] = []
    lost = {(e.source.id, e.destination.id): e for e in sim.flows()}
    assert {c.service for c in worked} == {"ratings"}
    gone = ("Kubernetes/bookinfo/reviews-v3", "Kubernetes/bookinfo/service:ratings")
    assert lost[gone].outcomes[0].code == "503"
    worked.clear()
    sim.set_weights("bookinfo", "reviews", {"v1": 0, "v2": 50, "v3": 50})  # a route written
    sim.flows()
    assert {c.service for c in worked} == {"reviews"}


async def test_a_snapshot_is_graded_once_for_every_view_and_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from meshtop import graphview
    from meshtop.graphview import ViewOptions, build
    from meshtop.health import HealthMemory

    snapshot = await _snapshot(200)
    graded: list[object] = []
    real_grade, real_memory = graphview.grade, HealthMemory.grade

    def grade(*args: Any) -> Any:
        graded.append("afresh")
        return real_grade(*args)

    def remembered(self: HealthMemory, *args: Any) -> Any:
        graded.append("memory")
        return real_memory(self, *args)

    monkeypatch.setattr(graphview, "grade", grade)
    monkeypatch.setattr(HealthMemory, "grade", remembered)
    memory = HealthMemory()
    namespaces = {w.namespace for w in snapshot.nodes.values()}
    # the views a key builds again over one snapshot: a filter, a grouping, a zoom level
    views = [
        build(snapshot, options, memory)
        for options in (
            ViewOptions(),
            ViewOptions(filter="pricing"),
            ViewOptions(grouping=graphview.Grouping.APP),
            ViewOptions(collapsed=namespaces),
        )
    ]
    build(snapshot, ViewOptions())  # and one without the console's memory
    assert graded == ["memory", "afresh"]
    assert all(v.grades is views[0].grades for v in views)
    app = _TableOnly(visible=True)
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(EdgeTable)
        table.memory = memory
        await pilot.pause()
        table.show(snapshot)
        await pilot.pause()
        assert table.fitted
    assert graded == ["memory", "afresh"]  # the table read the graph's grades


async def test_a_table_counted_hidden_then_shown_makes_only_the_rows_on_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    snapshot = await _snapshot(1000)
    made: list[Any] = []
    real = edge_table._cells

    def counted(edge: Any, *args: Any) -> Any:
        made.append(edge.key)
        return real(edge, *args)

    monkeypatch.setattr(edge_table, "_cells", counted)
    monkeypatch.setattr(edge_table, "TAKEN_AT_ONCE", len(snapshot.edges))  # at once
    app = _TableOnly(visible=False)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(EdgeTable)
        table.show(snapshot)
        assert table.row_count == len(snapshot.edges)  # taken in hidden, for 160 columns
        table.display = True  # shown, 160 columns wide
        await pilot.pause()
        await pilot.pause()
        assert table.fitted
        # a screen as first drawn, and again once sorted: never the 2,438 rows
        assert 0 < len(set(made)) <= 80, f"{len(set(made))} rows made for a 30-row screen"


# -- in a real terminal ---------------------------------------------------------------------

LARGE = ["demo", "--services", "20000"]  # its namespaces take seconds to lay out


def test_a_filter_typed_while_a_large_mesh_is_laid_out_sets_the_filter_and_runs_no_key() -> None:
    """`/pricing⏎` typed at once, while the graph is still being made: every letter goes
    to the prompt (p would pause, r refresh, c collapse, g regroup, ⏎ open a detail)."""
    with Terminal(LARGE, cols=200, rows=50) as t:
        t.wait_for("laying out", limit=120)
        t.press("/", *"pricing", "enter")
        t.wait(
            "the graph drawn with the filter",
            lambda: _drawn(t) and "filter pricing" in t.text(),
            120,
        )
        status = next(line for line in t.lines() if "edges" in line)
        assert "PAUSED" not in status and "collapsed" not in status, status
        assert "graph version" in status, status  # g did not regroup
        assert "esc back" not in t.text()  # no detail opened
        assert re.search(r"\d+ of [\d,]+ edges", status), status  # the filter's edges drawn
        quitting = time.monotonic()
        t.press("q")
        assert t.exit_code(limit=5) == 0
        assert time.monotonic() - quitting < 1.0


def test_q_quits_within_a_second_while_a_large_mesh_is_laid_out() -> None:
    with Terminal(LARGE, cols=160, rows=48) as t:
        t.wait_for("laying out", limit=120)
        quitting = time.monotonic()
        t.press("q")
        assert t.exit_code(limit=10) == 0
        assert time.monotonic() - quitting < 1.0


def _drawn(t: Terminal) -> bool:
    """The graph drawn: a namespace's band on screen, nothing being laid out."""
    return "╭─" in t.text() and "laying out" not in t.text()


async def test_a_large_mesh_is_graded_off_the_screens_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 17: with the edge table shown, each refresh of a large mesh was graded by the
    table on the screen's thread (51,239 edges: 2 s blocked at 20,000 services); the
    refresh grades it before handing it over, for the table and the graph to find."""
    import asyncio
    import threading

    from meshtop.connect import Sources
    from meshtop.health import HealthMemory
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.screens.main import DRAWN_AT_ONCE

    from ..conftest import only

    clock = [1.8e9]
    sim = Simulation(generated(1000, seed=1), clock=lambda: clock[0])
    graded_on: list[str] = []
    real = HealthMemory.grade

    def grade(self: HealthMemory, *args: Any) -> Any:
        graded_on.append(threading.current_thread().name)
        return real(self, *args)

    monkeypatch.setattr(HealthMemory, "grade", grade)
    app = MeshtopApp(Sources(only(sim.clusters), False, sim.clock))
    async with app.run_test(size=(160, 48)) as pilot:
        while app.snapshot is None:
            await asyncio.sleep(0.05)
        assert len(app.snapshot.edges) > DRAWN_AT_ONCE
        await pilot.press("2")
        await pilot.pause()
        table = app.query_one(EdgeTable)
        first = app.snapshot
        clock[0] += 2
        app.request_refresh()
        while app.snapshot is first or table._taken is not app.snapshot:
            await asyncio.sleep(0.05)
    assert len(graded_on) >= 2  # the first snapshot and the next, each once
    assert threading.main_thread().name not in graded_on


class _CanvasOnly(App[None]):
    def compose(self) -> ComposeResult:
        from meshtop.tui.widgets.graph import GraphCanvas

        yield GraphCanvas()


async def test_a_row_across_a_band_of_millions_of_cells_draws_only_the_screen() -> None:
    """Issue 17: a band's border was drawn cell by cell from its left end, whatever the
    screen showed of it: 165,593 cells for each of the namespaces level's bands at 20,000
    services (`1` back to the graph 0.2-2.7 s). The screen's cells are as before."""
    from meshtop.graphview import GraphView, ViewNode
    from meshtop.model import NodeKind
    from meshtop.tui.widgets.graph import GraphCanvas

    wide, node = 10_000_000, "east/shop/a"
    view = GraphView({node: ViewNode(node, "a", "shop", NodeKind.WORKLOAD, (node,))}, {})
    lay = Layout(
        nodes={node: Box(2, 1, 5, 3)},
        groups={"shop": Box(0, 0, wide, 6)},
        routes={},
        order={node: (0, 0)},
        group_order=("shop",),
        width=wide,
        height=6,
        group_of={node: "shop"},
    )
    async with _CanvasOnly().run_test(size=(80, 10)) as pilot:
        canvas = pilot.app.query_one(GraphCanvas)
        canvas.show(view, lay)
        await pilot.pause()
        started = time.perf_counter()
        rows = [canvas._render_row(y, 0, 80).text for y in range(6)]
        took = time.perf_counter() - started
        far = canvas._render_row(0, wide - 80, 80).text
    assert rows[0].startswith("╭─ shop ─") and rows[0].endswith("─")
    assert rows[1][0] == "│" and "│ a │" in rows[2] and rows[5].startswith("╰─")
    assert far.endswith("─╮")
    assert took < 0.3, f"{took:.2f} s for six rows"  # cell by cell: over a second
