"""The topology graph: boxes for nodes, lines with arrowheads for calls, bands for
namespaces. A `ScrollView` on Textual's Line API: only the rows on screen are drawn,
from an index of what crosses each row, and drawn rows are cached until something changes.
Over 400 lines: the drawing, its index of what crosses each row (sized by the lines,
not the layout's area) and the canvas's keys serve one widget and change together."""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from operator import itemgetter
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from meshtop import units
from meshtop.graphview import EXPIRED, FAULT, FAULTED, GraphView, ViewEdge
from meshtop.health import severity
from meshtop.layout import Box, Layout
from meshtop.model import Health, Protocol
from meshtop.sanitize import shown

# Directions a line leaves a cell by, as bits; the cell's character follows from them.
N, E, S, W = 1, 2, 4, 8
LINE = {
    E | W: "─", N | S: "│", E | S: "┌", W | S: "┐", N | E: "└", N | W: "┘",
    E | W | S: "┬", E | W | N: "┴", N | S | E: "├", N | S | W: "┤", N | E | S | W: "┼",
    E: "─", W: "─", N: "│", S: "│",
}  # fmt: skip
# Box borders by health, so that health reads without colour too (NO_COLOR, monochrome).
BORDERS = {
    Health.FAILING: "┏━┓┃┗┛",
    Health.DEGRADED: "┌╌┐╎└┘",
    Health.HEALTHY: "╭─╮│╰╯",
    Health.IDLE: "╭─╮│╰╯",
}
LABELS = ("rps", "errors", "p95", "p99")
Put = Callable[[int, str, Style | None], None]
LOCK = "🔒"
PLAIN = "!"
CROSS = "⇄"  # a call from one cluster to another, on its label
DENIED = "⊘"  # a call with requests an AuthorizationPolicy denied (403, Envoy's RBAC flag)
CROSSING = {"─": "╌", "│": "╎"}  # and its line, dashed
# A call into a destination a route injects a fault into (issue 21) is marked FAULTED on
# its label and as its arrowhead, so that a test reads as one, not as an outage.


def edge_label(e: ViewEdge, mode: str) -> str:
    """The text on an edge: the chosen figure, then a lock for mTLS or `!` for plain text,
    `⊘` for requests denied by an AuthorizationPolicy, `⇄` for a call from one cluster
    to another, and `↯` (`↯✗` past its end) into a destination a fault is injected into."""
    s = e.stats
    if s.protocol is Protocol.TCP and mode != "errors":
        text = units.bytes_per_s(s.tcp_request_bps + s.tcp_response_bps)
    elif mode == "rps":
        text = units.rps(s.rps)
    elif mode == "errors":
        text = "-" if s.protocol is Protocol.TCP else units.percent(s.error_rate)
    else:
        text = units.ms(s.p95_ms if mode == "p95" else s.p99_ms)
    mark = LOCK if s.mtls >= 1.0 else PLAIN
    fault = FAULTED.get(e.fault, "")
    return f"{text} {mark}{DENIED if s.denied_rps > 0 else ''}{CROSS if e.crosses else ''}{fault}"


def cells(text: str) -> int:
    return len(text) + text.count(LOCK)  # the lock is two cells wide


def fit(text: str, room: int) -> str:
    """The label, or less of it, in `room` cells: without the mTLS mark if need be, but
    never without its unit (a bare `25.6` reads as rps when it is kB/s), and a call
    between clusters never without its `⇄`, nor a denied one without its `⊘`, nor one into
    an injected fault without its `↯`. What cannot fit so is not drawn at all."""
    figure, _, mark = text.rpartition(" ")
    kept = "".join(m for m in (DENIED, CROSS) if m in mark)
    kept += next((f for f in (FAULTED[EXPIRED], FAULTED[FAULT]) if f in mark), "")
    shorter = f"{figure} {kept}" if kept else figure
    for candidate in (text, shorter):
        if cells(candidate) <= room:
            return candidate
    return ""


def _frame(put: Put, b: Box, row: int, chars: str, title: str, style: Style) -> None:
    """What of a box's border crosses `row`, its title in the top one; `chars` are the
    corners (top left, top right, bottom left, bottom right), then the lines."""
    top_l, top_r, bottom_l, bottom_r, across, down = tuple(chars)
    if row in (b.y, b.bottom):
        left, right = (top_l, top_r) if row == b.y else (bottom_l, bottom_r)
        put(b.x, left + across * (b.w - 2) + right, style)
        if row == b.y:
            put(b.x + 2, f" {shown(title)} ", style)
    else:
        put(b.x, down, style)
        put(b.right, down, style)


Key = tuple[str, str]
Cell = tuple[int, list[Key]]  # a cell of a line: its directions (bits), the edges through it
Strokes = tuple[tuple[int, str, tuple[Key, ...]], ...]  # a row's cells of lines, as drawn
STROKES_KEPT = 512  # rows whose strokes an index keeps: a screen's ten times over


@dataclass
class _Index:
    """What to draw on each row, sized by the lines and boxes laid out, never by the
    layout's area (which grows about as the square of the mesh): each line's straight
    stretches, across by row and down by column within bands of rows, its arrow by row,
    and the boxes by the rows they cross. A cell's character and a line's label are
    worked out when their row is drawn; a label's place is kept once found."""

    across: dict[int, list[tuple[int, int, Key]]]  # y -> (x_lo, x_hi, edge), by x_lo
    down: dict[int, list[tuple[int, int, int, Key]]]  # band -> (x, y_lo, y_hi, edge), by x
    band: int  # rows per band of `down`
    ends: dict[int, list[Key]]  # y -> edges whose first or last stretch runs across it
    arrows: dict[int, dict[int, tuple[str, Key]]]  # y -> x -> (char, edge)
    nodes: dict[int, list[str]]  # y -> nodes whose box crosses it
    groups: dict[int, list[str]]  # y -> groups whose band crosses it
    clusters: dict[int, list[str]]  # y -> clusters whose box crosses it
    routes: dict[Key, tuple[tuple[int, int], ...]]  # the lines drawn
    width: int
    placed: dict[Key, tuple[int, int, int] | None] = field(default_factory=dict)  # labels
    # the rows' line cells as drawn (`strokes`), for the rows drawn lately
    drawn: OrderedDict[tuple[int, int, int], Strokes] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )

    def cells(self, y: int, x0: int, x1: int) -> dict[int, Cell]:
        """The cells of lines on row `y` from column `x0` to before `x1`: each one's
        directions (a stretch's end leaves one way, its inside both) and its edges."""
        out: dict[int, Cell] = {}

        def add(x: int, bits: int, key: Key) -> None:
            cell = out.get(x)
            if cell is None:
                out[x] = (bits, [key])
            else:
                if key not in cell[1]:
                    cell[1].append(key)
                out[x] = (cell[0] | bits, cell[1])

        for lo, hi, key in self.across.get(y, ()):
            if lo >= x1:
                break
            for x in range(max(lo, x0), min(hi, x1 - 1) + 1):
                add(x, (E if x < hi else 0) | (W if x > lo else 0), key)
        for x, lo, hi, key in self._down_between(y, x0, x1):
            add(x, (S if y < hi else 0) | (N if y > lo else 0), key)
        return out

    def strokes(self, y: int, x0: int, x1: int) -> Strokes:
        """`cells` as drawn: each one's column, character and edges. A row's lines change
        only with the layout, which makes a new index; their colours change with every
        selection and refresh: kept for the last `STROKES_KEPT` rows drawn, a selection's
        frame colours them again rather than working out every cell anew (a hub's
        selection at 2,000 services draws every row on the screen again)."""
        found = self.drawn.get((y, x0, x1))
        if found is not None:
            self.drawn.move_to_end((y, x0, x1))
            return found
        cells = self.cells(y, x0, x1).items()
        found = tuple((x, LINE.get(bits, "┼"), tuple(keys)) for x, (bits, keys) in cells)
        self.drawn[(y, x0, x1)] = found
        if len(self.drawn) > STROKES_KEPT:
            self.drawn.popitem(last=False)
        return found

    def _down_between(self, y: int, x0: int, x1: int) -> list[tuple[int, int, int, Key]]:
        """The stretches down that cross row `y` between columns `x0` and `x1` (excluded)."""
        runs = self.down.get(y // self.band, ())
        i = bisect_left(runs, x0, key=itemgetter(0))
        found = []
        while i < len(runs) and runs[i][0] < x1:
            if runs[i][1] <= y <= runs[i][2]:
                found.append(runs[i])
            i += 1
        return found

    def _crossed_last(self, y: int, lo: int, hi: int, key: Key) -> int | None:
        """The last column from `lo` to `hi` on row `y` where a line other than `key`
        passes, if any."""
        if lo > hi:
            return None
        last = None
        for a, b, other in self.across.get(y, ()):
            if a > hi:
                break
            if other != key and b >= lo:
                last = max(last if last is not None else lo, min(b, hi))
        for x, _, _, other in self._down_between(y, lo, hi + 1):
            if other != key:
                last = max(last if last is not None else lo, x)
        return last

    def label(self, key: Key) -> tuple[int, int, int] | None:
        """Where a line's label goes, (from, to, row): on a stretch of its own, the last
        one, before the arrow, or else the first one, after the source; never over
        another line; nowhere without room for three cells."""
        if key not in self.placed:
            points = self.routes[key]
            best: tuple[int, int, int] | None = None
            for (ax, ay), (bx, by) in ((points[-2], points[-1]), (points[0], points[1])):
                if ay != by:
                    continue
                lo, hi = (min(ax, bx) + 1, max(ax, bx) - 1)  # between the stretch's ends
                crossed = self._crossed_last(ay, lo, hi, key)
                free_lo = lo if crossed is None else crossed + 1
                if best is None or hi - free_lo > best[1] - best[0]:
                    best = (free_lo, hi, ay)
            self.placed[key] = best if best is not None and best[1] - best[0] >= 3 else None
        return self.placed[key]

    def labels_on(self, y: int) -> list[tuple[int, int, Key]]:
        """The labels on row `y`: (from, to, edge)."""
        out = []
        for key in self.ends.get(y, ()):
            spot = self.label(key)
            if spot is not None and spot[2] == y:
                out.append((spot[0], spot[1], key))
        return out

    # What the whole layout holds, row by row: for tests, never for drawing.
    @property
    def labels(self) -> dict[int, list[tuple[int, int, Key]]]:
        found = {y: self.labels_on(y) for y in self.ends}
        return {y: spans for y, spans in found.items() if spans}

    @property
    def lines(self) -> Mapping[int, dict[int, Cell]]:
        return _Rows(self)


class _Rows(Mapping[int, dict[int, Cell]]):
    """Every row's cells of lines, over the layout's whole width, made when asked."""

    def __init__(self, index: _Index) -> None:
        self._index = index

    def __getitem__(self, y: int) -> dict[int, Cell]:
        cells = self._index.cells(y, 0, self._index.width + 1)
        if not cells:
            raise KeyError(y)
        return cells

    def __iter__(self) -> Iterator[int]:
        i = self._index
        rows = set(i.across)
        for runs in i.down.values():
            rows.update(y for _, lo, hi, _ in runs for y in range(lo, hi + 1))
        return iter(sorted(rows))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _index(
    layout: Layout, shown: set[str] | None = None, calls: set[tuple[str, str]] | None = None
) -> _Index:
    """What to draw on each row: of the laid-out nodes and calls, those `shown` (all, if
    None), so a filter or a focus hides what it leaves out without moving the rest.
    Linear in the nodes and the lines' bends."""
    routes = {k: r for k, r in layout.routes.items() if calls is None or k in calls}
    node_boxes = {n: b for n, b in layout.nodes.items() if shown is None or n in shown}
    groups_shown = {layout.group_of.get(n) for n in node_boxes}
    group_boxes = {g: b for g, b in layout.groups.items() if shown is None or g in groups_shown}
    clusters_shown = {g.rpartition("/")[0] for g in group_boxes}
    cluster_boxes = {
        c: b for c, b in layout.clusters.items() if shown is None or c in clusters_shown
    }
    # a line down is kept in every band of rows it crosses: 16 bands or fewer in all
    band = max(64, layout.height // 16 + 1)
    across: dict[int, list[tuple[int, int, Key]]] = defaultdict(list)
    down: dict[int, list[tuple[int, int, int, Key]]] = defaultdict(list)
    ends: dict[int, list[Key]] = defaultdict(list)
    arrows: dict[int, dict[int, tuple[str, Key]]] = defaultdict(dict)
    for key, points in routes.items():
        for (x0, y0), (x1, y1) in pairwise(points):
            if y0 == y1:
                across[y0].append((min(x0, x1), max(x0, x1), key))
            else:
                lo, hi = min(y0, y1), max(y0, y1)
                for part in range(lo // band, hi // band + 1):
                    down[part].append((x0, lo, hi, key))
        (xe, ye), (xp, yp) = points[-1], points[-2]
        if ye != yp:  # a line cut at a collapsed box's top or bottom
            arrows[ye][xe] = ("▼" if ye > yp else "▲", key)
        else:
            arrows[ye][xe] = ("▶" if xp < xe else "◀", key)
        for (_, ay), (_, by) in ((points[-2], points[-1]), (points[0], points[1])):
            if ay == by and key not in ends[ay][-1:]:
                ends[ay].append(key)
    for stretches in across.values():
        stretches.sort(key=itemgetter(0))
    for runs in down.values():
        runs.sort(key=itemgetter(0))
    nodes: dict[int, list[str]] = defaultdict(list)
    for n, b in node_boxes.items():
        for y in range(b.y, b.bottom + 1):
            nodes[y].append(n)
    groups: dict[int, list[str]] = defaultdict(list)
    for g, b in group_boxes.items():
        for y in range(b.y, b.bottom + 1):
            groups[y].append(g)
    clusters: dict[int, list[str]] = defaultdict(list)
    for c, b in cluster_boxes.items():
        for y in range(b.y, b.bottom + 1):
            clusters[y].append(c)
    return _Index(
        dict(across), dict(down), band, dict(ends), dict(arrows), dict(nodes), dict(groups),
        dict(clusters), routes, layout.width,
    )  # fmt: skip


def index_for(view: GraphView, layout: Layout) -> _Index:
    """What to draw of `view` placed by `layout`, made off the screen's thread (a worker)
    for a large mesh, then handed to `GraphCanvas.show`."""
    return _index(layout, set(view.nodes), set(view.edges))


class GraphCanvas(ScrollView, can_focus=True):
    """Draws a `GraphView` placed by a `Layout`. Arrow keys and hjkl move the selection."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(0, 1)", "down", show=False),
        Binding("k,up", "move(0, -1)", "up", show=False),
        Binding("l,right", "move(1, 0)", "right", show=False),
        Binding("h,left", "move(-1, 0)", "left", show=False),
        Binding("tab", "next_edge(1)", "next edge", show=False),
        Binding("shift+tab", "next_edge(-1)", "previous edge", show=False),
        Binding("enter", "open", "open"),
        # panning a large graph without moving the selection
        Binding("shift+left", "scroll_left", "pan left", show=False),
        Binding("shift+right", "scroll_right", "pan right", show=False),
        Binding("shift+up", "scroll_up", "pan up", show=False),
        Binding("shift+down", "scroll_down", "pan down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("home", "scroll_home", "top", show=False),
        Binding("end", "scroll_end", "bottom", show=False),
    ]
    DEFAULT_CSS = """
    GraphCanvas { background: $background; }
    """

    @dataclass
    class Selected(Message):
        node: str | None
        edge: tuple[str, str] | None

    @dataclass
    class Open(Message):
        node: str | None
        edge: tuple[str, str] | None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.view: GraphView | None = None
        self.layout_: Layout | None = None
        self._index: _Index | None = None
        self.label_mode = LABELS[0]
        self.node: str | None = None
        self.edge: tuple[str, str] | None = None
        self._matches: frozenset[str] = frozenset()  # what find found: marked, none hidden
        self._cache: OrderedDict[tuple[int, int, int], Strip] = OrderedDict()
        self._styles: dict[str, Style] = {}
        self._base: Style | None = None  # the widget's own style, as its rows were drawn
        self._shown: object = None  # the view's topology the index was built for
        self.empty = ""  # said in the middle of the canvas when nothing is shown

    @property
    def matches(self) -> frozenset[str]:
        """What find found: its names marked, none hidden."""
        return self._matches

    @matches.setter
    def matches(self, found: frozenset[str]) -> None:
        if found != self._matches:
            self._matches = found
            self._cache.clear()  # marks anywhere: the next drawing is of every row

    # -- feeding ----------------------------------------------------------------------

    def show(self, view: GraphView, layout: Layout, index: _Index | None = None) -> None:
        """A new snapshot: numbers and colours change; boxes move only with the layout.
        `index`: what to draw, made already (`index_for`), else made here if needed."""
        full = layout is not self.layout_ or view.topology() != self._shown
        if full:
            self.layout_ = layout
            self._shown = view.topology()
            self._index = index if index is not None else index_for(view, layout)
            self.virtual_size = Size(layout.width, layout.height)
        self.view = view
        if self.node not in view.nodes:
            self.node = min(view.nodes, key=self.reading_order, default=None)
        if self.edge not in view.edges:
            self.edge = None
        self.redraw(full=full)

    def redraw(self, *, full: bool = True, rows: Collection[int] | None = None) -> None:
        """Draw again. Unless `full`, only the rows on screen that changed are sent to
        the terminal: on a refresh that is a few labels, not the whole screen, which is
        what a slow SSH link wants. `rows`: the only rows that may have changed (a new
        selection's), the others kept as drawn."""
        self._styles = self._make_styles()
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        before = {
            row: strip
            for (row, sx, w), strip in self._cache.items()
            if (sx, w) == (scroll_x, width)
        }
        self._cache.clear()
        if full or not before:
            self.refresh()
            return
        for y in range(self.scrollable_content_region.height):
            row = y + scroll_y
            if rows is not None and row not in rows and row in before:
                self._cache[(row, scroll_x, width)] = before[row]
                continue
            strip = self._render_row(row, scroll_x, width)
            self._cache[(row, scroll_x, width)] = strip
            if before.get(row) != strip:
                self.refresh(Region(0, y, self.size.width, 1))

    def _make_styles(self) -> dict[str, Style]:
        theme = self.app.current_theme
        return {
            Health.HEALTHY: Style(color=theme.success or "green"),
            Health.DEGRADED: Style(color=theme.warning or "yellow"),
            Health.FAILING: Style(color=theme.error or "red", bold=True),
            Health.IDLE: Style(dim=True),
            "group": Style(color=theme.secondary or "blue", dim=True),
            "cluster": Style(color=theme.primary or "blue", bold=True),
            "label": Style(color=theme.foreground or "white"),
            "selected": Style(color=theme.accent or "cyan", bold=True, reverse=True),
            # underlined too, for a screen without colour
            "match": Style(color=theme.accent or "cyan", bold=True, underline=True),
            "selected_line": Style(color=theme.accent or "cyan", bold=True),
        }

    def notify_style_update(self) -> None:
        """The theme changed (the command palette, `:theme`): draw again in its colours."""
        super().notify_style_update()
        if self.is_mounted:
            styles, base = self._make_styles(), self.rich_style
            # a focus coming or going restyles the canvas too: its rows stay as drawn
            # unless a colour changed (issue 17: 43 rows drawn again for a `/`)
            if (styles, base) != (self._styles, self._base):
                self._cache.clear()
                self.refresh()
            self._styles, self._base = styles, base

    def _on_focus(self, event: events.Focus) -> None:
        self._focus_moved(event, True)

    def _on_blur(self, event: events.Blur) -> None:
        self._focus_moved(event, False)

    def _focus_moved(self, event: events.Focus | events.Blur, has_focus: bool) -> None:
        """As Textual's, but without drawing the canvas whole again: it looks the same
        with or without the focus (a colour that did change is drawn again above), and
        the whole graph sent again was 32-37 kB of output for `/` and for esc at 2,000
        services (issue 17)."""
        event.prevent_default()
        self.has_focus = has_focus
        if self.parent is not None:
            kind = events.DescendantFocus if has_focus else events.DescendantBlur
            self.parent.post_message(kind(self))

    def reading_order(self, n: str) -> tuple[int, int]:
        assert self.layout_ is not None
        b = self.layout_.nodes.get(n)
        return (b.y, b.x) if b else (0, 0)

    # -- drawing ----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = y + scroll_y
        key = (row, scroll_x, width)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._render_row(row, scroll_x, width)
            self._cache[key] = cached
            if len(self._cache) > 2000:
                self._cache.popitem(last=False)
        return cached

    def _render_row(self, row: int, x0: int, width: int) -> Strip:
        if self.view is None or self._index is None or self.layout_ is None or width <= 0:
            # in the widget's style, never none: Textual's NO_COLOR filter needs one
            return Strip.blank(width, self.rich_style)
        if not self.view.nodes:  # say why the canvas is blank, on its first rows
            said = shown(self.empty, newlines=True).splitlines()
            text = said[row] if row < len(said) else ""
            return Strip([Segment(text[:width].ljust(width), self.rich_style)], width)
        chars = [" "] * width
        styles: list[Style | None] = [None] * width
        x1 = x0 + width
        view, index, lay, st = self.view, self._index, self.layout_, self._styles

        def put(x: int, text: str, style: Style | None) -> None:
            # only what is on screen: a band's border is as wide as the band (165,593
            # cells at the namespaces level of 20,000 services, issue 17)
            for i in range(max(0, x0 - x), min(len(text), x1 - x)):
                chars[x + i - x0] = text[i]
                styles[x + i - x0] = style

        for c in index.clusters.get(row, ()):  # a cluster: a double line round its bands
            _frame(put, lay.clusters[c], row, "╔╗╚╝═║", f"cluster {c}", st["cluster"])
        for g in index.groups.get(row, ()):  # a namespace's band (`cluster/namespace`)
            _frame(put, lay.groups[g], row, "╭╮╰╯─│", g.rpartition("/")[2], st["group"])
        # each set of edges' style and whether they all cross between clusters, found once
        # a row: a stretch of line is a run of cells of the same edges
        looks: dict[tuple[Key, ...], tuple[Style, bool]] = {}
        for x, ch, keys in index.strokes(row, x0, x1):
            look = looks.get(keys)
            if look is None:
                look = looks[keys] = (
                    self._line_style(keys),
                    all(self._crosses(k) for k in keys),
                )
            if look[1] and ch in CROSSING:
                ch = CROSSING[ch]  # a call between clusters: a dashed line
            chars[x - x0] = ch  # strokes are within [x0, x1)
            styles[x - x0] = look[0]
        for lo, hi, key in index.labels_on(row):
            e = view.edges.get(key)
            if e is None or hi < x0 or lo >= x1:
                continue
            text = fit(edge_label(e, self.label_mode), hi - lo)
            if not text:
                continue
            start = hi - cells(text) + 1
            self._put_label(chars, styles, start - x0, text, self._line_style([key]))
        for x, (ch, key) in index.arrows.get(row, {}).items():
            if x0 <= x < x1:
                put(x, *self._arrow(ch, key))
        for n in index.nodes.get(row, ()):
            b = lay.nodes[n]
            if b.right < x0 or b.x >= x1:
                continue
            self._put_box(put, n, b, row)
        # A wide lock cut by the screen's edge: keep the row exactly `width` cells.
        if chars and chars[0] == "":
            chars[0] = " "
        if chars and chars[-1] == LOCK:
            chars[-1] = " "
        # The widget's own colours (the theme's background) under everything drawn.
        base = self.rich_style
        segments = []
        run_text, run_style = "", styles[0] if styles else None
        for ch, style in zip(chars, styles, strict=True):
            if style is run_style:
                run_text += ch
            else:
                segments.append(Segment(run_text, base + run_style if run_style else base))
                run_text, run_style = ch, style
        segments.append(Segment(run_text, base + run_style if run_style else base))
        return Strip(segments, width).crop(0, width)

    @staticmethod
    def _put_label(
        chars: list[str], styles: list[Style | None], x: int, text: str, style: Style
    ) -> None:
        cx = x
        for ch in text:
            if 0 <= cx < len(chars):
                chars[cx] = ch
                styles[cx] = style
            cx += 1
            if ch == LOCK:  # two cells wide: the next cell is its second half
                if 0 <= cx < len(chars):
                    chars[cx] = ""
                    styles[cx] = style
                cx += 1

    def _crosses(self, key: tuple[str, str]) -> bool:
        e = self.view.edges.get(key) if self.view is not None else None
        return e is not None and e.crosses

    def _arrow(self, ch: str, key: tuple[str, str]) -> tuple[str, Style]:
        """A line's arrowhead: `↯` into a destination a fault is injected into, in
        reverse video once past its end (for a screen without colour too)."""
        style = self._line_style([key])
        e = self.view.edges.get(key) if self.view is not None else None
        if e is None or not e.fault:
            return ch, style
        return FAULTED[FAULT], style + Style(reverse=True) if e.fault == EXPIRED else style

    def _line_style(self, keys: Collection[tuple[str, str]]) -> Style:
        assert self.view is not None
        if self.edge in keys:
            return self._styles["selected_line"]
        healths = [self.view.edges[k].health for k in keys if k in self.view.edges]
        order = (Health.FAILING, Health.DEGRADED, Health.HEALTHY, Health.IDLE)
        worst = next((h for h in order if h in healths), Health.IDLE)
        return self._styles[worst]

    def _put_box(self, put: Put, n: str, b: Box, row: int) -> None:
        """A node: a box (full), or its label between two bars (compact); the border
        says its health either way, for a screen without colour."""
        assert self.view is not None and self.layout_ is not None
        node = self.view.nodes.get(n)
        health = node.health if node else Health.IDLE
        style = self._styles[health]
        tl, h, tr, v, bl, br = tuple(BORDERS[health])
        framed = n in self.layout_.framed  # a collapsed namespace or cluster, in place
        compact = self.layout_.density.compact and not framed
        label_row = b.y if compact else b.y + 1
        if not compact and row == b.y:
            put(b.x, tl + h * (b.w - 2) + tr, style)
        elif not compact and row == b.bottom:
            put(b.x, bl + h * (b.w - 2) + br, style)
        elif framed:  # its sides and name only: lines that pass behind it stay seen
            put(b.x, v, style)
            if row == label_row and node is not None:
                name = f" {shown(node.label)} "[: b.w - 2]
                put(b.x + 1, name, self._label_style(n))
            put(b.right, v, style)
        else:
            room = b.w - 2
            inner = " " * room
            if row == label_row and node is not None:
                # a name longer than the layout gave it room for is cut, marked `…`
                name = units.clip(shown(node.label), room if compact else room - 2)
                inner = (name if compact else f" {name} ").ljust(room)
            put(b.x, v, style)
            put(b.x + 1, inner, self._label_style(n) if row == label_row else None)
            put(b.right, v, style)

    def _label_style(self, n: str) -> Style:
        """A node's name: reversed when selected, underlined when find found it."""
        if n == self.node:
            return self._styles["selected"]
        return self._styles["match" if n in self.matches else "label"]

    # -- selection ----------------------------------------------------------------------

    def select(self, node: str | None, edge: tuple[str, str] | None = None) -> None:
        # what a selection draws differently: its box's rows and its line's
        touched = self._rows_of(self.node, self.edge) | self._rows_of(node, edge)
        self.node, self.edge = node, edge
        if node is not None and self.layout_ is not None and node in self.layout_.nodes:
            b = self.layout_.nodes[node]
            self.scroll_to_region(Region(b.x, b.y, b.w, b.h), animate=False)
        self.redraw(full=False, rows=touched)
        self.post_message(self.Selected(node, edge))

    def _rows_of(self, node: str | None, edge: tuple[str, str] | None) -> set[int]:
        """The rows a node's box and a line (its label and arrowhead on it) are drawn on."""
        rows: set[int] = set()
        if self.layout_ is None:
            return rows
        box = self.layout_.nodes.get(node) if node is not None else None
        if box is not None:
            rows.update(range(box.y, box.bottom + 1))
        route = self.layout_.routes.get(edge) if edge is not None else None
        if route:
            ys = [y for _, y in route]
            rows.update(range(min(ys), max(ys) + 1))
        return rows

    def action_move(self, dx: int, dy: int) -> None:
        if self.view is None or self.layout_ is None or not self.view.nodes:
            return
        boxes = self.layout_.nodes
        here = boxes.get(self.node) if self.node else None
        if here is None:
            self.select(min(self.view.nodes, key=self.reading_order))
            return
        if dy:
            column = [n for n, b in boxes.items() if b.x == here.x and n in self.view.nodes]
            column.sort(key=lambda n: boxes[n].y)
            i = column.index(self.node) + dy  # type: ignore[arg-type]
            if 0 <= i < len(column):
                self.select(column[i])
                return
            # the column ends here: the nearest box further that way in another column
            # (a namespace alone in its column is not a dead end)
            beyond = [
                n
                for n, b in boxes.items()
                if n in self.view.nodes and (b.y > here.bottom if dy > 0 else b.bottom < here.y)
            ]
            if beyond:
                self.select(
                    min(beyond, key=lambda n: (abs(boxes[n].y - here.y), abs(boxes[n].x - here.x)))
                )
            return
        # along the calls first, else to the nearest box in the next column that way
        ends = [k[1] if dx > 0 else k[0] for k in self.view.edges if self.node == k[dx < 0]]
        candidates = [n for n in ends if n in boxes] or [
            n for n, b in boxes.items() if (b.x - here.x) * dx > 0 and n in self.view.nodes
        ]
        if candidates:
            target = min(
                candidates,
                key=lambda n: (abs(boxes[n].x - here.x), abs(boxes[n].y - here.y)),
            )
            self.select(target)

    def action_next_edge(self, step: int) -> None:
        if self.view is None or self.node is None:
            return
        # the worst first: a failing call is what the operator tabs to look at
        edges = self.view.edges
        mine = sorted(
            (k for k in edges if self.node in k), key=lambda k: (-severity(edges[k].health), k)
        )
        if not mine:
            return
        i = mine.index(self.edge) + step if self.edge in mine else (0 if step > 0 else -1)
        self.select(self.node, mine[i % len(mine)])

    def action_open(self) -> None:
        self.post_message(self.Open(self.node, self.edge))

    def on_click(self, event: events.Click) -> None:
        if self.layout_ is None:
            return
        x = event.x + int(self.scroll_offset.x)
        y = event.y + int(self.scroll_offset.y)
        for n, b in self.layout_.nodes.items():
            if b.contains(x, y):
                self.select(n)
                return
