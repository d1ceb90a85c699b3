"""The virtual tables' own cell drawing (issue 17, `FastRows`) draws every line as
DataTable's drawing through Rich does: the same characters in the same styles, the
cursor's row, the sorted column's bold header, a styled cell, figures to the right, a
cell too wide for its column. A cell is drawn once for what it shows, wherever its row
goes; the mouse finds its row and column by where it is, scrolled or not."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.text import Span, Text
from textual import on
from textual.app import App, ComposeResult
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import DataTable

from meshtop.tui.widgets.edge_table import EdgeTable, VirtualTable
from meshtop.tui.widgets.fast_rows import FastRows, _spans_drawn
from meshtop.tui.widgets.stat_table import StatTable


class Drawn(FastRows):
    """A FastRows table that counts the cells it drew itself."""

    def __init__(self) -> None:
        super().__init__(cursor_type="row")
        self.fast = 0

    def _cell_line(self, *args: Any) -> list[Segment] | None:
        line = super()._cell_line(*args)
        self.fast += line is not None
        return line


class OneTable(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.said: list[tuple[str, object]] = []  # what the table said: selected, a header

    def compose(self) -> ComposeResult:
        yield Drawn()

    @on(DataTable.RowSelected)
    def _row(self, event: DataTable.RowSelected) -> None:
        self.said.append(("row", event.cursor_row))

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.said.append(("header", event.column_key.value))


def _fill(table: DataTable[Any]) -> None:
    table.add_column("", key="health", width=4)
    table.add_column(Text("SOURCE"), key="source", width=14)
    table.add_column(Text("ERR% ▼", style="bold"), key="errors", width=7)  # sorted by it
    table.add_column("PROTO", key="proto", width=9)
    table.add_column("MTLS", key="mtls", width=5)
    rows: list[list[Any]] = [
        [
            Text("FAIL", "bold red"),
            Text("productpage-v1"),
            Text("12.5%", "bold red", justify="right"),
            "http",
            Text("yes", "green"),
        ],
        [
            Text("ok", "green"),
            Text.assemble("reviews ", ("↯", "bold")),
            Text("0%", justify="right"),
            "grpc+http",
            Text("no", "yellow"),
        ],
        [
            Text("warn", "yellow"),
            Text("a-name-far-too-long-for-it"),
            Text("-", justify="right"),
            "[b]tcp[/b]",
            Text("50%", "on blue", justify="left"),
        ],
        [
            Text(""),
            Text.assemble("v3 ", ("↯ EXPIRED", "bold red reverse"), style="yellow"),
            Text("1.2%", justify="center"),
            Text("details ", justify="right"),
            Text("x\ty"),
        ],
    ]
    for i, row in enumerate(rows):
        table.add_row(*row, key=str(i))


def _cells(strip: Strip) -> list[tuple[str, Any]]:
    """A line as its characters, each with its style: segments may be cut anywhere.
    The mouse's place DataTable puts in every cell's style (`meta`) is left out: the
    cells drawn here carry none (`FastRows._place`)."""
    return [
        (ch, s.style.clear_meta_and_links() if s.style else s.style) for s in strip for ch in s.text
    ]


def _lines(table: DataTable[Any], drawer: type[DataTable[Any]]) -> list[list[tuple[str, Any]]]:
    """The table's lines drawn by `drawer`'s methods: FastRows' own, or DataTable's."""
    drawing = ("render_lines", "render_line", "_render_line_in_row", "_render_cell")
    table._clear_caches()
    for name in drawing:
        setattr(table, name, getattr(drawer, name).__get__(table))
    try:
        region = Region(0, 0, table.size.width, table.size.height)
        return [_cells(line) for line in table.render_lines(region)]
    finally:
        for name in drawing:
            delattr(table, name)
        table._clear_caches()


async def test_the_fast_cells_draw_what_datatable_draws() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(Drawn)
        _fill(table)
        table.move_cursor(row=1)
        await pilot.pause()
        ours = _lines(table, FastRows)
        assert table.fast >= 20  # drawn here, not handed to DataTable
        theirs = _lines(table, DataTable)
        for y, (mine, rich) in enumerate(zip(ours, theirs, strict=True)):
            assert mine == rich, f"line {y}"
        # what is drawn: the header's mark, the cursor's row in its own style, whole cells
        assert "ERR% ▼" in "".join(ch for ch, _ in ours[0])
        assert {s for _, s in ours[2]} != {s for _, s in ours[1]}
        assert "productpage-v1" in "".join(ch for ch, _ in ours[1])


async def test_a_cell_is_drawn_once_wherever_its_row_goes() -> None:
    """Sorted (every row in another place, DataTable's own caches of no use) the rows
    are drawn from the cells already drawn; a changed cell alone is drawn again. And
    the cells drawn here carry no mouse place."""
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(Drawn)
        _fill(table)
        table.show_cursor = False  # (the cursor's row stays where it is, its cells apart)
        await pilot.pause()
        whole = Region(0, 0, table.size.width, table.size.height)
        first = [_cells(line) for line in table.render_lines(whole)]
        drawn = table.fast
        assert drawn >= 20
        table.sort("mtls", key=lambda cell: cell.plain)  # 50%, no, x\ty, yes: all moved
        sorted_ = [_cells(line) for line in table.render_lines(whole)]
        assert table.fast == drawn  # nothing drawn again
        assert sorted_[1:] == [first[3], first[2], first[4], first[1]]
        assert sorted_ == _lines(table, DataTable)  # as DataTable draws the sorted table
        table._clear_caches()  # (as `_lines` did, what is kept went with DataTable's)
        table.render_lines(whole)
        drawn = table.fast
        table.update_cell("1", "errors", Text("7%", justify="right"))
        assert not any(s.style and s.style.meta for s in table.render_lines(whole)[2])
        assert table.fast == drawn + 1  # that cell alone
        assert "7%" in "".join(ch for ch, _ in _cells(table.render_lines(whole)[2]))


async def test_the_mouse_finds_its_row_and_column_by_where_it_is() -> None:
    """A click on a row moves the cursor there, a second one selects it, a click on a
    header says so, the hover follows the mouse; past the last column a click still
    takes the row; scrolled, the row under the mouse, not the one first drawn there."""
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(Drawn)
        _fill(table)
        await pilot.pause()
        # columns: health 4+2 cells, source 14+2, errors 7+2; the header is line 0; the
        # cells clicked are drawn here (row 1's, the header's)
        assert await pilot.click(Drawn, offset=(8, 2))
        assert table.cursor_coordinate == Coordinate(1, 1)  # the source cell of row 1
        assert await pilot.click(Drawn, offset=(8, 2))
        await pilot.pause()
        assert ("row", 1) in app.said
        assert await pilot.click(Drawn, offset=(24, 0))
        await pilot.pause()
        assert ("header", "errors") in app.said
        assert await pilot.hover(Drawn, offset=(25, 2))
        await pilot.pause()
        assert table.hover_coordinate == Coordinate(1, 2)
        assert await pilot.click(Drawn, offset=(58, 1))  # past the last column
        assert table.cursor_row == 0
        for i in range(4, 30):
            table.add_row(*(Text(f"r{i}") for _ in range(5)), key=str(i))
        await pilot.pause()
        table.scroll_to(y=10, animate=False)
        await pilot.pause()
        assert table.scroll_y == 10
        assert await pilot.click(Drawn, offset=(8, 3))
        assert table.cursor_row == 12  # the third row shown, 10 rows down


async def test_the_hover_and_a_focus_change_draw_the_same() -> None:
    app = OneTable()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(Drawn)
        _fill(table)
        table.hover_coordinate = table.hover_coordinate.down().down()
        table._set_hover_cursor(True)
        for focused in (True, False):
            if focused:
                table.focus()
            else:
                table.blur()
            await pilot.pause()
            table._pseudo_class_state = table.get_pseudo_class_state()
            assert _lines(table, FastRows) == _lines(table, DataTable)


def test_the_virtual_tables_draw_their_cells_so() -> None:
    assert issubclass(VirtualTable, FastRows)
    assert issubclass(EdgeTable, FastRows) and issubclass(StatTable, FastRows)


def test_the_spans_of_a_cell_draw_as_rich_draws_them() -> None:
    """Stretches in their spans' styles over the line's own, as `Text.render` makes them;
    spans that overlap, are empty or run past the end are Rich's to draw."""
    console = App[None]().console
    plain = "ab cd ef gh"
    cases = [
        [Span(0, 2, "bold")],
        [Span(3, 5, "red"), Span(6, 8, "on blue")],  # gaps before, between, after
        [Span(0, 11, "yellow"), Span(3, 5, "bold red reverse")],  # the cell's own style
        [Span(0, 11, "yellow"), Span(0, 11, "bold")],
        [Span(0, 3, "red"), Span(3, 11, "green")],  # end to end
        [Span(2, 2, "red"), Span(4, 6, "green")],  # an empty one: Rich cuts the line there
        [Span(0, 6, "red"), Span(4, 9, "green")],  # overlapping: Rich's
        [Span(6, 8, "red"), Span(0, 2, "green")],  # out of order: Rich's
        [Span(8, 20, "red")],  # past the end: Rich's
    ]
    for spans in cases:
        text = Text(plain, end="")
        text.spans = spans
        assert _spans_drawn(plain, spans, console) == list(text.render(console)), spans
