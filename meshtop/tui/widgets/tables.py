"""Filling a DataTable with what a backend said, so it draws right from its first paint;
and a table so filled that sorts by any of its columns (`SortableTable`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from meshtop.sanitize import shown

Cell = str | Text
Header = tuple[str, str]  # a column's key, its title
Row = tuple[str, list[Text]]  # a row's key, its cells made safe

DESCENDING, ASCENDING = "▼", "▲"  # the edge table's marks
OFF = "off"  # `:sort off`: back to the order the table was filled in
MISSING = frozenset({"", "-", "—"})  # no figure: last, either way
# a figure as the console writes it (`units`): `12.34%`, `1.2krps`, `45ms`, `1.5s`, `3`
NUMBER = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*(%|krps|rps|/s|µs|us|ms|s|m|h)?")
DIGITS = re.compile(r"(\d+(?:\.\d+)?)")
SCALE = {"krps": 1000.0, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "m": 60.0, "h": 3600.0}


def _safe(cell: Cell) -> Text:
    if isinstance(cell, str):
        return Text(shown(cell), no_wrap=True, end="")
    said = shown(cell.plain)
    if said == cell.plain:
        return cell
    return Text(said, style=cell.style, justify=cell.justify, no_wrap=True, end="")


def fill(
    table: DataTable[Any],
    headers: Sequence[Header],
    rows: Iterable[tuple[str, Sequence[Cell]]],
) -> None:
    """Show `rows` (key, cells) under `headers` (key, title), each column as wide as its
    widest cell.

    - Text is shown as it is: a route's `uri regex ^/api/[a-z]+` or an operation
      `GET /users/[id]` is not Rich markup, which a DataTable reads a `str` cell as.
    - A DataTable sizes its auto-width columns only once it is next idle. A table drawn
      before that, as on a loaded machine, showed header-wide columns (`isti` for the
      trace's root). Columns given their width when added are right from the first paint.
    - Every cell is outside text: controls shown (`sanitize.shown`), whether a `str` or a
      `Text` (which keeps its style, and its spans when there was nothing to show).
    - A `SortableTable` keeps its sort: the rows go in its order, its column marked.
    """
    safe = [(key, [_safe(c) for c in cells]) for key, cells in rows]
    if isinstance(table, SortableTable):
        table.filled(list(headers), safe)
    else:
        _draw(table, [(key, Text(title)) for key, title in headers], safe)


def _draw(table: DataTable[Any], headers: Sequence[tuple[str, Text]], rows: list[Row]) -> None:
    widths = [title.cell_len for _, title in headers]
    for _, cells in rows:
        widths = [max(w, c.cell_len) for w, c in zip(widths, cells, strict=True)]
    table.clear(columns=True)
    for (key, title), width in zip(headers, widths, strict=True):
        table.add_column(title, key=key, width=width)
    for key, cells in rows:
        table.add_row(*cells, key=key)


def figure(cell: Text) -> float | None:
    """A cell's figure as a number (`12.34%` 12.34, `1.2krps` 1200, `45ms` 0.045); None
    where it is not one figure."""
    found = NUMBER.fullmatch(cell.plain.strip())
    if found is None:
        return None
    return float(found.group(1)) * SCALE.get(found.group(2) or "", 1.0)


def numeric(rows: Sequence[Row], column: int) -> bool:
    """Whether a column holds figures: every cell with something in it is one."""
    said = [cells[column] for _, cells in rows if cells[column].plain.strip() not in MISSING]
    return bool(said) and all(figure(c) is not None for c in said)


def words(cell: Text) -> tuple[str | float, ...]:
    """A cell's text as it sorts: in any case, a figure in it as a number (`unknown
    1.1rps` before `unknown 12rps`); text and numbers alternate, so each compares with
    its own kind."""
    parts = DIGITS.split(cell.plain.strip().casefold())
    return tuple(float(p) if i % 2 else p for i, p in enumerate(parts))


def ordered(rows: Sequence[Row], column: int, descending: bool) -> list[Row]:
    """`rows` by one column: figures as numbers, text as text (`words`; figures before
    words); a cell with nothing in it (`-`, `—`) last either way; ties as they were."""
    said = [r for r in rows if r[1][column].plain.strip() not in MISSING]
    empty = [r for r in rows if r[1][column].plain.strip() in MISSING]

    def key(row: Row) -> tuple[int, float, tuple[str | float, ...]]:
        cell = row[1][column]
        number = figure(cell)
        if number is not None:
            return (0 if not descending else 1, number, ())
        return (1 if not descending else 0, 0.0, words(cell))

    return [*sorted(said, key=key, reverse=descending), *empty]


class RowTable(DataTable[Any]):
    """A DataTable whose rows `j` and `k` move down and up too, as they move in the graph
    and the waterfall: every table of the console's (Textual merges a subclass's
    bindings with these)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "down", show=False),
        Binding("k", "cursor_up", "up", show=False),
    ]


class SortableTable(RowTable):
    """A table `fill` fills that sorts by any column, either way (the `Sortable` of the
    main screen: `sort_by`, `reverse_sort`; `s` the next column, a click on a header).

    - The sort (a column, a direction) is kept across fills (a table refilled on every
      refresh stays sorted); a column the table no longer has is no sort.
    - With no sort, the rows stay in the order they were filled in (the routes tab's is
      the precedence order); `:sort off` goes back to it.
    - The sorted column's header is marked ▼ (largest or Z first) or ▲, in bold, as the
      edge table's; the cursor stays on its row across a sort.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "cycle_sort", "sort", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.sort_column: str | None = None  # a column's key; None: as filled
        self.descending = False
        self._headers: list[Header] = []
        self._rows: list[Row] = []

    def filled(self, headers: list[Header], rows: list[Row]) -> None:
        """Rows given by `fill`: shown in the sort kept (the cursor is the caller's)."""
        self._headers, self._rows = headers, rows
        if self.sort_column not in [key for key, _ in headers]:
            self.sort_column = None
        self._show()

    def _show(self) -> None:
        rows = self._rows
        at = [key for key, _ in self._headers].index(self.sort_column) if self.sort_column else -1
        if at >= 0:
            rows = ordered(rows, at, self.descending)
        _draw(self, [(key, self._title(key, title)) for key, title in self._headers], rows)

    def _title(self, key: str, title: str) -> Text:
        if key != self.sort_column:
            return Text(title)
        mark = DESCENDING if self.descending else ASCENDING
        return Text(f"{title} {mark}".strip(), style="bold")

    def _column_named(self, column: str) -> str | None:
        named = column.casefold()
        for key, title in self._headers:
            if named in (key.casefold(), title.casefold()):
                return key
        return None

    def sort_names(self) -> list[str]:
        """The columns it sorts by, as `:sort` takes them: each column's key."""
        return [key for key, _ in self._headers]

    def sort_by(self, column: str, descending: bool | None = None) -> str | None:
        """Sorted by `column` (its key or title, any case), descending or ascending (None:
        its own order: figures largest first, words A to Z); `off`: as filled. What is
        wrong, in one line, else None."""
        if column.casefold() == OFF:
            self._resort(None, False)
            return None
        key = self._column_named(column)
        if key is None:
            names = " ".join(self.sort_names())
            return f"sort takes {names} or off"  # off: the order as listed
        if descending is None:
            at = [k for k, _ in self._headers].index(key)
            descending = numeric(self._rows, at)
        self._resort(key, descending)
        return None

    def reverse_sort(self) -> None:
        """The same column, the other way round (no sort: nothing to turn round)."""
        if self.sort_column is not None:
            self._resort(self.sort_column, not self.descending)

    def action_cycle_sort(self) -> None:
        """`s`: the next column, in its own order; after the last, the order as filled."""
        keys = self.sort_names()
        if not keys:
            return
        at = keys.index(self.sort_column) if self.sort_column in keys else -1
        self.sort_by(keys[at + 1] if at + 1 < len(keys) else OFF)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by it; on the sorted one, the other way."""
        key = str(event.column_key.value)
        if key == self.sort_column:
            self.reverse_sort()
        else:
            self.sort_by(key)

    def _resort(self, column: str | None, descending: bool) -> None:
        """The rows in the order asked for, the cursor kept on its row."""
        kept: str | None = None
        if self.row_count:
            kept = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        self.sort_column, self.descending = column, descending
        self._show()
        if kept is not None and self.row_count:
            self.move_cursor(row=self.get_row_index(kept), animate=False)
