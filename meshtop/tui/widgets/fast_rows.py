"""A DataTable that draws a one-line cell straight into segments (issue 17): DataTable
renders each cell through Rich's console (`console.render_lines` of the cell padded and
styled: five layers of generators for a word), which was over half of drawing the edge
table's 43 rows of 11 cells when its tab shows (`2`, 110 ms at any size). A cell of one
line of `Text` that fits its column is made here into the same segments, styles and
widths; anything else (wrapped, cut, tabs, a renderable of another kind, row labels) is
left to DataTable's own drawing."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual._types import SegmentLines
from textual.widgets import DataTable

# the justifications drawn here; `center` and `full`'s spacing are DataTable's own
_JUSTIFIED = frozenset({"default", "left", "right", "full"})


class FastRows(DataTable[Any]):
    """DataTable's `_render_cell` for the common cell: one line of `Text` (or a string,
    which DataTable makes a `Text`) no wider than its column, in a row one line high.
    The segments are those `console.render_lines` gives for DataTable's padded, styled
    cell, so a screen is drawn the same (`tests/tui/test_fast_rows.py` compares them)."""

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        header = row_index == -1
        if column_index == -1:  # a row label: DataTable's own
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._header_row_key if header else self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        cache_key = (
            row_key,
            column_key,
            base_style,
            cursor,
            hover,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._cell_render_cache.get(cache_key)  # type: ignore[arg-type]
        if cached is not None:
            return cached
        if header:
            height = self.header_height
        else:
            row = self.rows.get(row_key) if row_key is not None else None
            height = row.height if row is not None else 0
        cell = self._get_row_renderables(row_index).cells[column_index] if height == 1 else None
        line: list[Segment] | None = None
        if isinstance(cell, Text):
            fixed = not header and (
                row_index < self.fixed_rows or column_index < self.fixed_columns
            )
            component, post = self._get_styles_to_render_cell(
                header,
                False,
                fixed,
                hover,
                cursor,
                self.show_cursor,
                self._show_hover_cursor,
                self.cursor_foreground_priority == "css",
                self.cursor_background_priority == "css",
            )
            meta = Style.from_meta({"row": row_index, "column": column_index})
            line = self._cell_line(cell, width, base_style + meta + component, post)
        if line is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        lines = [line]
        self._cell_render_cache[cache_key] = lines  # type: ignore[arg-type]
        return lines

    def _cell_line(self, text: Text, width: int, pre: Style, post: Style) -> list[Segment] | None:
        """The segments of a cell `width` cells wide (its padding included) holding
        `text`, as `Styled(Padding(text), pre, post)` renders one line of it; None for a
        text this does not draw (DataTable's own drawing then)."""
        pad = self.cell_padding
        inner = width - 2 * pad
        plain = text.plain
        # Textual's console options (`App.console_options`) set neither a justification
        # nor an overflow: the text's own, else Rich's defaults
        justify = text.justify or "default"
        overflow = text.overflow or "fold"
        if (
            inner < 1
            or text.no_wrap is False  # it would wrap, where a line is all that shows
            or justify not in _JUSTIFIED
            or overflow == "ignore"
            or "\n" in plain
            or "\t" in plain
        ):
            return None
        length = cell_len(plain)
        if length > inner:  # cut: Rich's truncation and its spans' trimming
            return None
        spare = inner - length
        spans = text.spans
        # What Text.wrap and justify make of the line: `left` pads it with spaces in its
        # own style, `right` puts them before it (its spans moved), after stripping its
        # end; `default` leaves the spare cells to the padding, in no style.
        if justify == "right":
            if plain != plain.rstrip():
                return None
            plain = " " * spare + plain
            spans = [Span(start + spare, end + spare, style) for start, end, style in spans]
            spare = 0
        elif justify == "left":
            plain += " " * spare
            spare = 0
        console = self.app.console
        if text.style and spans:  # Text.join: the line's own style, then its spans
            spans = [Span(0, len(plain), text.style), *spans]
        if spans:
            joined = Text(plain, end="")
            joined.spans = spans
            body = list(joined.render(console))
        elif text.style:
            body = [Segment(plain, console.get_style(text.style, default=Style.null()))]
        else:
            body = [Segment(plain)]
        # Padding: the cell's padding and the spare cells in no style of their own;
        # Styled: every segment between DataTable's base and component styles before,
        # and the cursor's colours after when CSS has the priority
        segments = [Segment(" " * pad, pre)] if pad else []
        segments += [Segment(s.text, pre + s.style if s.style else pre) for s in body]
        if spare + pad:
            segments.append(Segment(" " * (spare + pad), pre))
        if post:
            segments = [Segment(s.text, s.style + post if s.style else post) for s in segments]
        return segments
