"""A DataTable that draws a one-line cell straight into segments (issue 17): DataTable
renders each cell through Rich's console (`console.render_lines` of the cell padded and
styled: five layers of generators for a word), which was over half of drawing the edge
table's 43 rows of 11 cells when its tab shows (`2`, 110 ms at any size). A cell of one
line of `Text` that fits its column is made here into the same segments, styles and
widths; anything else (wrapped, cut, tabs, a renderable of another kind, row labels) is
left to DataTable's own drawing.

A row is drawn as DataTable draws it, with what is the same for each of its cells (the
cursor, the hover, the styles, the widths, the widget's style) found once for the row:
43 lines of 2,000 services' edges drawn afresh in 14 ms, not 25 (median, this machine).

A cell's drawing is kept by what it shows and how (`_kept`), not by its row's place or
the table's count of updates as DataTable keeps it: a refresh changes the figures of a
few cells, and a sort by health moves the rows, but most cells on screen are drawn as
they were, and were drawn again for every refresh (all 43 rows' 504 cells each 2 s while
the edge table showed at 2,000 services, where 36-98 changed). So the cells drawn here
carry no mouse place (DataTable puts the row and column in each cell's style, its
`meta`): a mouse event's place is worked out from where it is (`_place`), for every cell,
DataTable's own drawing too, and DataTable's handlers read that as ever."""

from __future__ import annotations

import itertools
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual import events
from textual._types import SegmentLines
from textual.coordinate import Coordinate
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets.data_table import RowKey

from meshtop.tui.widgets.tables import RowTable

# the justifications drawn here; `center` and `full`'s spacing are DataTable's own
_JUSTIFIED = frozenset({"default", "left", "right", "full"})
# cells' drawings kept by what they show (`FastRows._kept`): a screen of 48 rows of 12
# cells is 576; once this many are kept, they are the older ones, and those found again
# there are kept on (a dict each: an LRUCache's look-up took as long as the drawing saved)
CELLS_KEPT = 4096


class FastRows(RowTable):
    """DataTable's drawing for the common cell: one line of `Text` (or a string, which
    DataTable makes a `Text`) no wider than its column, in a row one line high.
    The segments are those `console.render_lines` gives for DataTable's padded, styled
    cell, but for the mouse's place, so a screen is drawn the same
    (`tests/tui/test_fast_rows.py` compares them)."""

    _line_style: Style | None = None  # the widget's style, while its lines are drawn

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # a cell's segments by its text, spans, styles and width (`_drawn`); older ones
        self._kept: dict[tuple[Any, ...], list[Segment]] = {}
        self._older: dict[tuple[Any, ...], list[Segment]] = {}

    def _clear_caches(self) -> None:
        super()._clear_caches()  # (the styles changed, say): what is kept goes too
        self._kept, self._older = {}, {}

    # -- the mouse's place ---------------------------------------------------------------

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        event.style = self._place(event)  # then DataTable's handler, which reads it

    async def _on_click(self, event: events.Click) -> None:
        event.style = self._place(event)

    def _place(self, event: events.MouseEvent) -> Style:
        """The row and column under the mouse as DataTable's drawing puts them in a
        cell's style (`meta`): the header's row -1, a row label's column -1, past the
        last column `out_of_bounds`; below the rows, or off the table, none."""
        at = event.get_content_offset(self)
        if at is None:
            return Style.null()
        x, y = at
        fixed = self._get_fixed_offset()  # the header and fixed rows, the label and fixed columns
        try:
            row_key, _ = self._get_offsets(y if y < fixed.top else y + int(self.scroll_y))
        except LookupError:
            return Style.null()
        row = -1 if row_key is self._header_row_key else self._row_locations.get(row_key)
        if row is None:
            return Style.null()
        label = self._row_label_column_width
        if x < label:
            return Style.from_meta({"row": row, "column": -1})
        if x >= fixed.left:  # scrolled: the row from its first column, as it is cut
            x += int(self.scroll_x)
        ends = itertools.accumulate(c.get_render_width(self) for c in self.ordered_columns)
        for column, end in enumerate(ends):
            if x - label < end:
                return Style.from_meta({"row": row, "column": column})
        return Style.from_meta({"row": row, "column": 0, "out_of_bounds": True})

    # -- drawing -------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        """DataTable's, with the widget's own style found once for all its lines, not for
        each line (it is made from every ancestor's: a tenth of drawing the edge table)."""
        self._line_style = self.rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._line_style = None

    def render_line(self, y: int) -> Strip:
        style = self._line_style
        if style is None or self.fixed_rows:  # drawn alone, or rows fixed: DataTable's own
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, style)

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> tuple[SegmentLines, SegmentLines]:
        """DataTable's, for a table with a row cursor and no row labels shown or fixed
        columns (the virtual tables): the row's cursor, hover and widths found once for the
        row, not twice for each cell. The same cache and the same lines."""
        if (
            (self._labelled_row_exists and self.show_row_labels)
            or self.fixed_columns
            or self.cursor_type != "row"
        ):
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        cache_key = (
            row_key,
            line_no,
            base_style,
            cursor_location,
            hover_location,
            self.cursor_type,
            self.show_cursor,
            self._show_hover_cursor,
            self._update_count,
            self._pseudo_class_state,
        )
        cached = self._row_render_cache.get(cache_key)
        if cached is not None:
            return cached
        at = self._row_locations.get(row_key)
        row_index = -1 if at is None else at  # -1: the header's
        cursor = cursor_location.row == row_index  # DataTable's `_should_highlight`, by row
        hover = hover_location.row == row_index
        header = row_index == -1
        row_style = self._get_row_style(row_index, base_style)
        # what `_render_cell` finds for each cell, found here for the row
        show_hover = self._show_hover_cursor
        if header:
            height = self.header_height
        else:
            row = self.rows.get(row_key)
            height = row.height if row is not None else 0
        row_cells = self._get_row_renderables(row_index).cells if height == 1 else None
        component, post = self._get_styles_to_render_cell(
            header,
            False,
            not header and row_index < self.fixed_rows,
            hover,
            cursor,
            self.show_cursor,
            show_hover,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        cell_style = row_style + component
        padding = 2 * self.cell_padding
        used = self._row_label_column_width
        cells: list[list[Segment]] = []
        for column_index, column in enumerate(self.ordered_columns):
            width = padding + (column.content_width if column.auto_width else column.width)
            used += width
            lines = None
            if row_cells is not None:  # kept by what it shows, not DataTable's key
                lines = self._drawn(row_cells[column_index], width, cell_style, post)
            if lines is None:  # DataTable's own
                lines = self._render_cell(row_index, column_index, row_style, width, cursor, hover)
            cells.append(lines[line_no])
        # the rest of the width, in the row's style
        extend_style, _ = self._get_styles_to_render_cell(
            row_index == -1,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            False,
            False,
        )
        extend_style = row_style + extend_style  # (no mouse place: `_place` works it out)
        cells.append([Segment(" " * max(0, self.size.width - used), extend_style)])
        pair: tuple[SegmentLines, SegmentLines] = ([], cells)
        self._row_render_cache[cache_key] = pair
        return pair

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
        lines: SegmentLines | None = None
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
            lines = self._drawn(cell, width, base_style + component, post)
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_render_cache[cache_key] = lines  # type: ignore[arg-type]
        return lines

    def _drawn(self, cell: object, width: int, style: Style, post: Style) -> SegmentLines | None:
        """The cell's lines drawn here, or as drawn before for the same text in the same
        styles and width; for a one-line `Text` in the cell's style (its row's and its
        component's); None: DataTable draws it."""
        if not isinstance(cell, Text):
            return None
        shows = (cell.plain, *cell.spans, cell.style, cell.justify, cell.overflow,
                 cell.no_wrap, width, style, post)  # fmt: skip
        line = self._kept.get(shows)
        if line is None:
            line = self._older.get(shows) or self._cell_line(cell, width, style, post)
            if line is None:
                return None
            self._kept[shows] = line
            if len(self._kept) >= CELLS_KEPT:
                self._older, self._kept = self._kept, {}
        return [line]

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
            body = _spans_drawn(plain, spans, console)
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


def _spans_drawn(plain: str, spans: list[Span], console: Console) -> list[Segment]:
    """The segments of `plain` in its `spans`, as `Text.render` makes them, for spans that
    do not overlap each other (after one over the whole line, a styled cell's own): each
    stretch in its span's style, added to the line's; what Rich makes of any other."""
    whole = len(plain)
    get = console.get_style
    null = Style.null()
    under = null  # the style of every stretch: the line's own span, or none
    rest = spans
    if spans[0].start == 0 and spans[0].end == whole:
        under, rest = get(spans[0].style, default=null), spans[1:]
    segments: list[Segment] = []
    at = 0
    for start, end, style in rest:
        if start < at or end <= start or end > whole:  # overlapping, empty, backwards...
            joined = Text(plain, end="")
            joined.spans = spans
            return list(joined.render(console))
        if start > at:
            segments.append(Segment(plain[at:start], under))
        segments.append(Segment(plain[start:end], under + get(style, default=null)))
        at = end
    if whole > at:
        segments.append(Segment(plain[at:], under))
    return segments
