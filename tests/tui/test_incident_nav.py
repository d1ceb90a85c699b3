"""Going to the problem in an incident: `n`/`N` through what is failing or degraded,
worst first; find (`f`) jumps to a node and marks every match, hiding none; the edge
table's errors per second, its sort keys (`S`, `:sort`) and their mark in the header."""

from __future__ import annotations

import time
from dataclasses import replace

from meshtop.connect import Sources
from meshtop.graphview import GraphView, ViewNode
from meshtop.model import NodeKind
from meshtop.sim.sources import Simulation
from meshtop.sim.topology import Behaviour, bookinfo
from meshtop.tui.app import MeshtopApp
from meshtop.tui.graph_state import GraphState
from meshtop.tui.screens.main import MainScreen
from meshtop.tui.widgets.edge_table import EdgeTable, per_s
from meshtop.tui.widgets.graph import GraphCanvas

from ..conftest import Clock, only
from .test_console import _edges_tab, _first_snapshot, _rows, keys, settled

V3 = "Kubernetes/bookinfo/app:reviews:v3"
DETAILS = "Kubernetes/bookinfo/app:details:v1"
RATINGS = "Kubernetes/bookinfo/app:ratings:v1"
TO_V3 = "Kubernetes/bookinfo/productpage-v1>Kubernetes/bookinfo/reviews-v3"  # a table row
TO_DETAILS = "Kubernetes/bookinfo/productpage-v1>Kubernetes/bookinfo/details-v1"


def _app(clock: Clock, errors: dict[str, float] | None = None) -> MeshtopApp:
    """The simulated Bookinfo (reviews v3 failing), with the workloads of `errors` failing
    that share of their requests too."""
    mesh = bookinfo()
    for name, share in (errors or {}).items():
        w = next(w for w in mesh.workloads.values() if w.workload.name == name)
        mesh.workloads[w.id] = replace(w, behaviour=Behaviour(error_rate=share))
    return MeshtopApp(Sources(only(Simulation(mesh, clock=clock).clusters), True, time.time))


def _status(app: MeshtopApp) -> str:
    return str(app.query_one("#status").render())


def _notice(app: MeshtopApp) -> str:
    return str(app.query_one("#notice").render())


def _table_key(app: MeshtopApp) -> str | None:
    table = app.query_one(EdgeTable)
    key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    return key.value


async def test_n_goes_to_the_worst_problem_then_the_next_and_round(clock: Clock) -> None:
    # details v1: degraded, but 20rps at 2% is 0.4 failures a second; ratings v1 fewer
    app = _app(clock, {"details-v1": 0.02, "ratings-v1": 0.005})
    async with app.run_test(size=(160, 40)) as pilot:
        await _first_snapshot(app)
        canvas = app.query_one(GraphCanvas)
        seen = []
        for key in ("n", "n", "n", "n", "N", "N"):
            await keys(pilot, key)
            await settled(pilot)
            seen.append((canvas.node, canvas.edge))
        assert seen == [
            (V3, None), (DETAILS, None), (RATINGS, None), (V3, None), (RATINGS, None),
            (DETAILS, None),
        ]  # fmt: skip
        status = _status(app)
        assert "problem 2/3: details v1 degraded, " in status and " errors, 0." in status
        # its worst edge in the edge table, the cursor on it even while the table is hidden
        assert _table_key(app) == TO_DETAILS
        await keys(pilot, "N")
        assert "problem 1/3: reviews v3 failing" in _status(app)
        assert "err/s" in _status(app)


async def test_n_in_the_edge_table_moves_its_cursor_and_keeps_counting(clock: Clock) -> None:
    app = _app(clock, {"details-v1": 0.02})
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        await keys(pilot, "end")  # the cursor elsewhere first
        await keys(pilot, "n")
        await settled(pilot)
        assert _table_key(app) == TO_V3
        assert "1/2 reviews v3 failing, 0." in _status(app)  # short at 120 columns
        await keys(pilot, "n")  # the table moved the graph's selection to the edge: still 1
        await settled(pilot)
        assert _table_key(app) == TO_DETAILS
        assert "2/2 details v1 degraded, 0." in _status(app)


async def test_n_with_no_problem_says_so_in_place(clock: Clock) -> None:
    app = _app(clock, {"reviews-v3": 0.0})
    async with app.run_test(size=(120, 30)) as pilot:
        await _first_snapshot(app)
        canvas = app.query_one(GraphCanvas)
        before = canvas.node
        await keys(pilot, "n")
        assert "no problem: nothing drawn is failing or degraded" in _notice(app)
        assert canvas.node == before


async def test_n_from_the_namespaces_zoom_zooms_in_to_the_node(clock: Clock) -> None:
    app = _app(clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await _first_snapshot(app)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.run_command("zoom namespaces")
        await settled(pilot)
        assert screen.graph.placement.zoom_shown == "namespaces"
        await keys(pilot, "n")
        await settled(pilot)
        assert screen.graph.placement.zoom_shown != "namespaces"
        assert app.query_one(GraphCanvas).node == V3
        assert "problem 1/1: reviews v3 failing" in _status(app)


async def test_find_selects_marks_every_match_and_hides_none(clock: Clock) -> None:
    app = _app(clock)
    async with app.run_test(size=(160, 40)) as pilot:
        await _first_snapshot(app)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        canvas = app.query_one(GraphCanvas)
        drawn = set(canvas.view.nodes) if canvas.view else set()
        await keys(pilot, "f", *"REV", "enter")  # any case
        await settled(pilot)
        reviews = {n for n in drawn if "app:reviews:" in n}
        assert canvas.matches == reviews and len(reviews) == 3
        assert canvas.view is not None and set(canvas.view.nodes) == drawn  # nothing hidden
        # the first in reading order, then the next with f and enter (the text kept)
        order = sorted(reviews, key=canvas.reading_order)
        assert canvas.node == order[0]
        assert "(1/3)" in _notice(app)
        await keys(pilot, "f", "enter")
        assert canvas.node == order[1]
        await keys(pilot, "f", "enter")
        await keys(pilot, "f", "enter")
        assert canvas.node == order[0]  # round again
        # a name whole comes before names that start with it: the workload's own name
        await keys(pilot, "f", "ctrl+u", *"reviews-v3", "enter")
        assert canvas.node == V3 and canvas.matches == {V3}
        await keys(pilot, "escape")
        assert canvas.matches == frozenset()
        await keys(pilot, "f", *"nothing-such", "enter")
        assert "find: no node drawn is named 'nothing-such'" in _notice(app)
        assert canvas.matches == frozenset()


def test_find_ranks_a_whole_name_then_its_start_then_a_part() -> None:
    def node(n: str, label: str) -> ViewNode:
        return ViewNode(n, label, "shop", NodeKind.WORKLOAD, (f"c/shop/{n}",))

    view = GraphView(
        {
            n.id: n
            for n in (
                node("cartography", "cartography"),
                node("pricecart", "pricecart"),
                node("cart", "cart"),
                node("cart-v2", "cart v2"),
            )
        },
        {},
    )
    assert GraphState.find("Cart", view) == ["cart", "cart-v2", "cartography", "pricecart"]
    assert GraphState.find("shop/cart-v2", view) == ["cart-v2"]
    assert GraphState.find("  ", view) == [] and GraphState.find("boat", view) == []


async def test_sort_keys_reverse_and_mark_the_header(clock: Clock) -> None:
    app = _app(clock, {"details-v1": 0.02})
    async with app.run_test(size=(160, 30)) as pilot:
        await _first_snapshot(app)
        await _edges_tab(pilot)
        table = app.query_one(EdgeTable)
        headers = [str(c.label) for c in table.columns.values()]
        assert headers[0] == "▼" and "ERR/S" in headers  # worst first, marked so
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.run_command("sort ERR/S")
        await settled(pilot)
        rows = _rows(app)
        err_s = headers.index("ERR/S")
        # errors a second: details (20rps at 2%) before the failing reviews v3 (2rps at 15%)
        assert [r[2] for r in rows[:2]] == ["details-v1", "reviews-v3"]
        assert float(rows[0][err_s]) > float(rows[1][err_s]) > 0
        assert str(table.columns[table.ordered_columns[err_s].key].label) == "ERR/S ▼"
        assert "sort err/s ▼" in _status(app)
        await keys(pilot, "S")
        await settled(pilot)
        rows = _rows(app)
        assert rows[-1][2] == "details-v1" and rows[-2][2] == "reviews-v3"
        assert "ERR/S ▲" in [str(c.label) for c in table.columns.values()]
        screen.run_command("sort p99 asc")
        await settled(pilot)
        p99 = [str(c.label) for c in table.columns.values()].index("P99 ▲")
        shown = [r[p99] for r in _rows(app) if r[p99] != "-"]
        assert shown[0] == min(shown, key=lambda t: float(t.rstrip("ms").rstrip("s")))
        await keys(pilot, ":", *"sort nosuch", "enter")
        said = _notice(app)
        assert "sort takes health cluster" not in said  # one cluster: no such column
        assert said.startswith("sort takes health source destination proto rps err% 4xx% err/s")
        await keys(pilot, ":", *"sort rps sideways", "enter")
        assert "sort takes COLUMN [asc|desc]" in _notice(app)
        await keys(pilot, "s")  # the next column, in its own order again
        await settled(pilot)
        assert table.sort_said == "mtls ▲"


def test_errors_per_second_read_to_two_figures() -> None:
    assert [per_s(x) for x in (0.0, 0.0042, 0.15, 2.84, 17.0, 174.0, 1234.0)] == [
        "0", "0.004", "0.15", "2.8", "17.0", "174", "1.2k"
    ]  # fmt: skip
