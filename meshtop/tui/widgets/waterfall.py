"""The span waterfall: the tree on the left (indented, `▾`/`▸` where it folds, `!` just
before a failed span's fold mark, at its own level), a bar per span on the right scaled
to the zoomed time range, with a ruler above. Only the rows on screen are drawn
(Textual's Line API), so a trace of 10,000 spans scrolls as one of ten."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from meshtop import units
from meshtop.sanitize import shown
from meshtop.waterfall import Row, Tree, bar, ticks

TREE_LEAST = 16  # columns the span tree has at least; at most half the width
RULER_ROWS = 1


def _name(row: Row) -> str:
    """A row's place in the tree: indented, its error mark, fold mark, orphan mark, name."""
    s = row.span
    fold = ("▸ " if row.collapsed else "▾ ") if row.has_children else "  "
    # the mark has a column of its own, just before the fold mark: at the span's own
    # level, so a failed span's name is indented as its siblings' are
    mark = "!" if s.error else " "
    orphan = "⤷ " if row.orphan else ""
    return f"{'  ' * min(row.depth, 12)}{mark}{fold}{orphan}{shown(s.service)} {shown(s.operation)}"


def tree_width(widest: int, width: int) -> int:
    """The span tree's columns: as wide as its widest name, up to half the width (the
    bars have the rest), and never under `TREE_LEAST` where there is room for it."""
    return max(min(TREE_LEAST, width // 2), min(widest + 1, width // 2))


class Waterfall(ScrollView, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "down", show=False),
        Binding("k,up", "move(-1)", "up", show=False),
        Binding("pagedown", "move(20)", "page down", show=False),
        Binding("pageup", "move(-20)", "page up", show=False),
        Binding("home", "move(-1000000)", "first", show=False),
        Binding("end", "move(1000000)", "last", show=False),
        Binding("enter,space", "fold", "fold"),
        Binding("z", "zoom", "zoom to span"),
        Binding("plus", "zoom_by(0.5)", "zoom in", key_display="+"),
        Binding("minus", "zoom_by(2)", "zoom out", key_display="-"),
        Binding("0", "unzoom", "whole trace"),
    ]
    DEFAULT_CSS = """
    Waterfall { background: $background; }
    """

    @dataclass
    class Selected(Message):
        row: Row

    def __init__(self, tree: Tree, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.spans_tree = tree
        self.collapsed: set[str] = set()
        self.rows = tree.rows()
        # the widest name with every span shown: folding never makes the columns jump
        self.widest = max((len(_name(r)) for r in self.rows), default=0)
        self.cursor = 0
        self.t0, self.t1 = tree.bounds
        self.virtual_size = Size(0, len(self.rows) + RULER_ROWS)
        self._style_cache: dict[str, Style] | None = None

    def on_mount(self) -> None:
        if self.rows:
            self.post_message(self.Selected(self.rows[0]))

    @property
    def zoomed(self) -> bool:
        return bool((self.t0, self.t1) != self.spans_tree.bounds)

    # -- keys -------------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + step))
        self._follow()
        self.refresh()
        self.post_message(self.Selected(self.rows[self.cursor]))

    def _follow(self) -> None:
        """Keep the selected row on screen."""
        height = self.scrollable_content_region.height - RULER_ROWS
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif height > 0 and self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def action_fold(self) -> None:
        if not self.rows:
            return
        row = self.rows[self.cursor]
        if not row.has_children:
            return
        key = self.spans_tree.key_of(row)
        self.collapsed ^= {key}
        self.rows = self.spans_tree.rows(self.collapsed)
        self.virtual_size = Size(0, len(self.rows) + RULER_ROWS)
        self.refresh()

    def action_zoom(self) -> None:
        """Zoom to the selected span's time (at least a microsecond wide)."""
        if not self.rows:
            return
        row = self.rows[self.cursor]
        self.t0, self.t1 = row.start_us, row.start_us + max(row.span.duration_us, 1)
        self.refresh()

    def action_zoom_by(self, factor: float) -> None:
        """Narrow (factor < 1) or widen the time range around its middle."""
        first, last = self.spans_tree.bounds
        middle, half = (self.t0 + self.t1) / 2, (self.t1 - self.t0) / 2 * factor
        self.t0 = max(first, int(middle - max(half, 1)))
        self.t1 = min(last, int(middle + max(half, 1)))
        if self.t1 <= self.t0:
            self.t1 = self.t0 + 1
        self.refresh()

    def action_unzoom(self) -> None:
        self.t0, self.t1 = self.spans_tree.bounds
        self.refresh()

    def select_row(self, index: int) -> None:
        self.cursor = max(0, min(len(self.rows) - 1, index))
        self._follow()
        self.refresh()

    # -- drawing ----------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_cache = None  # the theme changed: its colours again

    def _styles(self) -> dict[str, Style]:
        if self._style_cache is not None:
            return self._style_cache
        theme = self.app.current_theme
        styles = {
            "bar": Style(color=theme.primary or "blue"),
            "critical": Style(color=theme.warning or "yellow"),
            "error": Style(color=theme.error or "red", bold=True),
            "dim": Style(dim=True),
            "text": Style(color=theme.foreground or "white"),
            "selected": Style(reverse=True, bold=True),
            "inside": Style(reverse=True, bold=True),  # a duration written in its bar
            "ruler": Style(color=theme.secondary or "cyan", dim=True),
        }
        self._style_cache = styles
        return styles

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        styles = self._styles()
        if y < RULER_ROWS:
            return self._ruler(width, styles)
        index = int(self.scroll_offset.y) + y - RULER_ROWS
        if not 0 <= index < len(self.rows) or width <= 0:
            # styled: Textual's NO_COLOR filter cannot take a segment without a style
            return Strip.blank(width, self.rich_style)
        row = self.rows[index]
        return self._row(row, index == self.cursor, width, styles)

    def _ruler(self, width: int, styles: dict[str, Style]) -> Strip:
        tree_w = tree_width(self.widest, width)
        bars = max(0, width - tree_w - 1)
        label = "zoomed " if self.zoomed else ""
        head = units.clip(f"{label}{units.ms((self.t1 - self.t0) / 1000)} trace", tree_w).ljust(
            tree_w
        )
        cells = [" "] * bars
        for x, text in ticks(self.t0, self.t1, self.spans_tree.bounds[0], bars):
            start = min(max(0, x - len(text) // 2), max(0, bars - len(text)))
            if all(c == " " for c in cells[max(0, start - 1) : start + len(text) + 1]):
                cells[start : start + len(text)] = text
        return Strip([Segment(head + " ", styles["dim"]), Segment("".join(cells), styles["ruler"])])

    def _row(self, row: Row, selected: bool, width: int, styles: dict[str, Style]) -> Strip:
        tree_w = tree_width(self.widest, width)
        bars = max(0, width - tree_w - 1)
        s = row.span
        left = units.clip(_name(row), tree_w).ljust(tree_w)
        name_style = styles["error"] if s.error else styles["text"]
        if selected:
            name_style = name_style + styles["selected"]
        segments = [Segment(left, name_style), Segment(" ", styles["text"])]
        cells = [" "] * bars
        placed = bar(row.start_us, s.duration_us, self.t0, self.t1, bars)
        style = (
            styles["error"] if s.error else styles["critical"] if row.critical else styles["bar"]
        )
        if placed is None:
            side = "◂" if row.start_us + s.duration_us < self.t0 else "▸"
            if bars:
                cells[0 if side == "◂" else bars - 1] = side
            segments.append(Segment("".join(cells), styles["dim"]))
            return Strip(segments)
        a, b = placed
        label = f" {units.ms(s.duration_us / 1000)}"
        for x in range(a, b):
            cells[x] = "█" if row.critical else "▆"
        if b + len(label) <= bars:  # after the bar
            cells[b : b + len(label)] = label
        elif a >= len(label):  # before it
            cells[a - len(label) : a] = label[1:] + " "
        elif b - a >= len(label) + 1:  # a long bar: in it, as its colour's reverse
            inside = label[1:]
            segments += [
                Segment("".join(cells[:a]), styles["dim"]),
                Segment(cells[a], style),
                Segment(inside, style + styles["inside"]),
                Segment("".join(cells[a + 1 + len(inside) : b]), style),
                Segment("".join(cells[b:]), styles["dim"]),
            ]
            return Strip(segments)
        segments += [
            Segment("".join(cells[:a]), styles["dim"]),
            Segment("".join(cells[a:b]), style),
            Segment("".join(cells[b:]), styles["dim"]),
        ]
        return Strip(segments)
