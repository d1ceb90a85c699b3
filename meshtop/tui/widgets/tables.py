"""Filling a DataTable with what a backend said, so it draws right from its first paint."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from meshtop.sanitize import shown

Cell = str | Text


def _safe(cell: Cell) -> Text:
    if isinstance(cell, str):
        return Text(shown(cell), no_wrap=True, end="")
    said = shown(cell.plain)
    if said == cell.plain:
        return cell
    return Text(said, style=cell.style, justify=cell.justify, no_wrap=True, end="")


def fill(
    table: DataTable[Any],
    headers: Sequence[tuple[str, str]],
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
    """
    safe = [(key, [_safe(c) for c in cells]) for key, cells in rows]
    widths = [Text(title).cell_len for _, title in headers]
    for _, cells in safe:
        widths = [max(w, c.cell_len) for w, c in zip(widths, cells, strict=True)]
    table.clear(columns=True)
    for (key, title), width in zip(headers, widths, strict=True):
        table.add_column(title, key=key, width=width)
    for key, cells in safe:
        table.add_row(*cells, key=key)
