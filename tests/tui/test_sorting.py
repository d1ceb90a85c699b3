"""Every table of the main screen sorts by any column, either way (issue 19): the routes
tab (`3`) and the posture tab (`5`) as the edge table and the stat tab do, by `:sort
COLUMN [asc|desc]`, `S` and `s`; figures as numbers, text as text, nothing last; the
sorted column's header marked ▼ or ▲; the sort kept when a refresh fills the table again;
`:sort off` back to the order as listed (the routes' precedence); a wrong column said in
one line."""

from __future__ import annotations

from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable

from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.widgets.tables import SortableTable, ordered

from ..conftest import only
from .test_console import _first_snapshot, keys, settled, until

WEIGHT, DESTINATION = 4, 3  # the routes tab's columns


def _app(sim: Simulation) -> MeshtopApp:
    return MeshtopApp(Sources(only(sim.clusters, writable=True), True, sim.clock))


def _column(table: DataTable[Any], at: int) -> list[str]:
    return [str(table.get_row_at(i)[at]).strip() for i in range(table.row_count)]


def _headers(table: DataTable[Any]) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


def _cursor_key(table: DataTable[Any]) -> str:
    return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)


def _notice(app: MeshtopApp) -> str:
    return str(app.query_one("#notice").render())


async def _command(pilot: Pilot[None], line: str) -> None:
    await keys(pilot, "colon", *line, "enter")
    await settled(pilot)


async def _routes(app: MeshtopApp, pilot: Pilot[None]) -> DataTable[Any]:
    await _first_snapshot(app)
    await keys(pilot, "3")
    await settled(pilot)
    table = app.query_one("#routes", DataTable)
    await until(pilot, lambda: table.row_count == 6, "the routes tab's rows")
    return table


async def test_routes_sort_by_a_figure_both_ways_and_back_to_precedence(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        table = await _routes(app, pilot)
        listed = _column(table, DESTINATION)
        assert listed == ["productpage v1", "reviews v1", "reviews v2", "reviews v3",
                          "ratings v1", "details v1"]  # fmt: skip
        table.move_cursor(row=listed.index("reviews v2"))
        on = _cursor_key(table)
        await _command(pilot, "sort weight desc")
        # as numbers (100 before 70, 20 before 10), ties as listed
        assert _column(table, WEIGHT) == ["100", "100", "100", "70", "20", "10"]
        assert _column(table, DESTINATION)[:3] == ["productpage v1", "ratings v1", "details v1"]
        assert _headers(table)[WEIGHT] == "weight ▼"
        assert [h for h in _headers(table) if h[-1] in "▼▲"] == ["weight ▼"]
        assert _cursor_key(table) == on  # the cursor kept on its row
        assert app.focused is table
        await keys(pilot, "S")
        assert _column(table, WEIGHT) == ["10", "20", "70", "100", "100", "100"]
        assert _headers(table)[WEIGHT] == "weight ▲" and _cursor_key(table) == on
        await _command(pilot, "sort actual")  # its own order: the largest first
        actual = [float(c.rstrip("%")) for c in _column(table, 6)]
        assert actual == sorted(actual, reverse=True) and _headers(table)[6] == "actual ▼"
        await _command(pilot, "sort off")
        assert _column(table, DESTINATION) == listed
        assert not any(h[-1] in "▼▲" for h in _headers(table))
        assert _notice(app) == "" and _cursor_key(table) == on


async def test_routes_sort_by_text_both_ways(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        table = await _routes(app, pilot)
        await _command(pilot, "sort destination")  # its own order: A to Z
        names = ["details v1", "productpage v1", "ratings v1",
                 "reviews v1", "reviews v2", "reviews v3"]  # fmt: skip
        assert _column(table, DESTINATION) == names
        assert _headers(table)[DESTINATION] == "destination ▲"
        await _command(pilot, "sort DESTINATION desc")
        assert _column(table, DESTINATION) == names[::-1]
        assert _headers(table)[DESTINATION] == "destination ▼"
        # by route: the rows that say none (the same route again) last, either way
        await _command(pilot, "sort route")
        routes = _column(table, 0)
        assert routes[-2:] == ["", ""] and routes[:4] == sorted(routes[:4])
        await keys(pilot, "S")
        routes = _column(table, 0)
        assert routes[-2:] == ["", ""] and routes[:4] == sorted(routes[:4], reverse=True)


async def test_routes_sort_kept_across_a_refresh_and_s_steps_the_columns(
    sim: Simulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        table = await _routes(app, pilot)
        assert isinstance(table, SortableTable)
        await _command(pilot, "sort weight asc")
        fills: list[int] = []
        filled = table.filled
        monkeypatch.setattr(table, "filled", lambda *a: (fills.append(1), filled(*a)))
        before = app.snapshot
        await keys(pilot, "r")
        await settled(pilot)
        await until(pilot, lambda: app.snapshot is not before and fills, "a refresh's routes")
        assert _column(table, WEIGHT) == ["10", "20", "70", "100", "100", "100"]
        assert _headers(table)[WEIGHT] == "weight ▲"
        # `s`: the next column in its own order, after the last the order as listed
        await keys(pilot, "s")
        assert _headers(table)[WEIGHT + 1] == "configured ▼"
        await keys(pilot, "s", "s", "s")  # actual, problem, policy
        assert _headers(table)[-1] == "policy ▲"
        await keys(pilot, "s")
        assert not any(h[-1] in "▼▲" for h in _headers(table))
        await keys(pilot, "s")
        assert _headers(table)[0] == "route ▲"


async def test_a_wrong_column_is_one_line_naming_the_columns(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        table = await _routes(app, pilot)
        listed = _column(table, DESTINATION)
        await _command(pilot, "sort p99")  # the edge table's, not the routes'
        said = _notice(app)
        assert "sort takes route rule matches destination weight configured actual" in said
        assert said.rstrip().endswith("problem policy or off") and "\n" not in said.strip()
        assert _column(table, DESTINATION) == listed
        assert app.main._table().sort_name == "health"  # the edge table left as it was


async def test_posture_sorts_by_any_column_both_ways(sim: Simulation) -> None:
    app = _app(sim)
    async with app.run_test(size=(160, 40)) as pilot:
        await _first_snapshot(app)
        await keys(pilot, "5")
        table = app.query_one("#posture", DataTable)
        await until(pilot, lambda: table.row_count > 0, "the posture tab's rows")
        listed = _column(table, 0)
        assert listed[:2] == ["bookinfo", "details-v1"]  # a namespace, then its workloads
        table.move_cursor(row=listed.index("reviews-v3"))
        await _command(pilot, "sort name")  # A to Z, the indent aside
        names = _column(table, 0)
        assert names == sorted(names, key=str.casefold) and _cursor_key(table) == "w|" + (
            "Kubernetes/bookinfo/reviews-v3"
        )
        assert _headers(table)[0] == "NAMESPACE / WORKLOAD ▲"
        await keys(pilot, "S")
        assert _column(table, 0) == names[::-1]
        assert _headers(table)[0] == "NAMESPACE / WORKLOAD ▼"
        await _command(pilot, "sort strict desc")  # `-`, nothing to refuse: last
        refused = _column(table, 3)
        assert refused[0] == "unknown 1.1rps" or refused[0].startswith("unknown ")
        assert refused[-1] == "-" and _headers(table)[3] == "STRICT WOULD REFUSE ▼"
        await _command(pilot, "sort off")
        assert _column(table, 0) == listed


def _rows(*cells: str) -> list[tuple[str, list[Text]]]:
    return [(str(i), [Text(c)]) for i, c in enumerate(cells)]


def test_figures_sort_as_numbers_and_nothing_goes_last() -> None:
    rows = _rows("12.34%", "—", "9.5%", "", "100.00%", "-", "0.12%")
    assert [c[0].plain for _, c in ordered(rows, 0, True)] == [
        "100.00%", "12.34%", "9.5%", "0.12%", "—", "", "-"]  # fmt: skip
    assert [c[0].plain for _, c in ordered(rows, 0, False)] == [
        "0.12%", "9.5%", "12.34%", "100.00%", "—", "", "-"]  # fmt: skip
    rates = _rows("1.2krps", "12rps", "0.50rps", "980rps")
    assert [c[0].plain for _, c in ordered(rates, 0, True)] == [
        "1.2krps", "980rps", "12rps", "0.50rps"]  # fmt: skip
    times = _rows("45ms", "1.5s", "9.8ms", "12s")
    assert [c[0].plain for _, c in ordered(times, 0, False)] == ["9.8ms", "45ms", "1.5s", "12s"]
    text = _rows("reviews v10", "Reviews v2", "details v1", "-")
    assert [c[0].plain for _, c in ordered(text, 0, False)] == [
        "details v1", "Reviews v2", "reviews v10", "-"]  # fmt: skip
