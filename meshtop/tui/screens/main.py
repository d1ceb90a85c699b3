"""The console's main screen: the graph, the edge table, the routes and the posture tabs,
under the status line, with the notice, the `/` and `:` prompt and the key line. It owns
how the snapshot is drawn (filter, focus, cluster, collapsed, zoom, grouping, labels,
sort), the selection, and the keys and `:` commands that change them; the app hands it
each snapshot. Its keys are its own, so a dialog or a detail on top of it never takes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.geometry import Size
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Header, Input, TabbedContent, TabPane

from meshtop.errors import MeshtopError, UsageError
from meshtop.federation import distinct
from meshtop.graphview import GROUPINGS, Grouping
from meshtop.health import Thresholds
from meshtop.model import MeshSnapshot
from meshtop.tui import commands
from meshtop.tui.changes import Changes, node_route, row_route, show_routes
from meshtop.tui.graph_state import GraphState
from meshtop.tui.placement import ZOOMS
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.screens.detail_intro import edge_screen, node_screen
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.graph import LABELS, GraphCanvas
from meshtop.tui.widgets.keyline import KeyLine
from meshtop.tui.widgets.notice import Notice
from meshtop.tui.widgets.posture import PostureTab
from meshtop.tui.widgets.prompt import Prompt
from meshtop.tui.widgets.status import StatusLine, problems, view_parts

if TYPE_CHECKING:
    from meshtop.tui.app import MeshtopApp

CHROME_ROWS = 5  # header, status line, tabs (two rows), key line
DETAIL_WINDOW_S = 900.0
FILTER_HINT = (
    "filter: names (plain text), ns=NAME, error>1%, rps>10, p99>200, mtls=false; ! inverts"
)


class MainScreen(commands.Commands, Screen[None]):
    if TYPE_CHECKING:
        app: MeshtopApp

    # ctrl+p: the same commands as `:`, beside Textual's own (keys, screenshot, quit)
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {commands.Palette}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "quit"),
        Binding("question_mark", "app.help", "help", key_display="?"),
        # priority: taken before the next key is handed on, so a key typed right after
        # `/` goes to the prompt, not to the graph (see check_action)
        Binding("slash", "prompt('/')", "filter", key_display="/", priority=True),
        Binding("colon", "prompt(':')", "command", key_display=":", priority=True),
        Binding("escape", "go_back", "back", show=False),
        Binding("1", "tab('graph')", "graph", show=False),
        Binding("2", "tab('edges')", "edges", show=False),
        Binding("3", "tab('routes')", "routes", show=False),
        Binding("5", "tab('posture')", "posture", show=False),  # 4: issue 19's stat view
        Binding("w", "shift", "shift weights"),
        Binding("g", "cycle_grouping", "group"),
        Binding("t", "cycle_labels", "labels"),
        Binding("c", "collapse('namespace')", "collapse", show=False),
        Binding("C", "collapse('cluster')", "collapse cluster", show=False),
        Binding("r", "refresh_now", "refresh"),
        Binding("p", "toggle_pause", "pause"),
        Binding("s", "cycle_sort", "sort", show=False),
        Binding("plus", "zoom(-1)", "more detail", key_display="+", show=False),
        Binding("minus", "zoom(1)", "less detail", key_display="-", show=False),
        Binding("z", "zoom_fit", "fit", show=False),
    ]

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__()
        self.graph = GraphState(thresholds)
        self.changes = Changes(self)
        self._drawn = False
        # The detail screens open on the last window chosen in one, 15m at first.
        self.detail_window_s = DETAIL_WINDOW_S

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        yield StatusLine("connecting…", id="status")
        with TabbedContent(initial="graph", id="tabs"):
            with TabPane("Graph", id="graph"):
                yield GraphCanvas(id="canvas")
            with TabPane("Edges", id="edges-tab"):
                yield EdgeTable(id="edges")
            with TabPane("Routes", id="routes-tab"):
                yield DataTable(id="routes", cursor_type="row", zebra_stripes=True)
            with TabPane("Posture", id="posture-tab"):
                yield PostureTab()
        # under the graph, not over it: a line said takes the graph's last rows for a
        # while and never moves what is drawn above
        yield Notice()
        yield Prompt()
        yield KeyLine()

    def on_mount(self) -> None:
        self._drawn = True  # its widgets are there: a snapshot is drawn from now on
        self.set_focus(self._canvas())  # at once: a key typed at start is its
        self._table().thresholds = self.app.settings.thresholds
        self._table().memory = self.graph.memory
        if self.app.snapshot is not None:  # a refresh that ended before this was drawn
            self.show_snapshot(self.app.snapshot)

    def _canvas(self) -> GraphCanvas:
        return self.query_one(GraphCanvas)

    def _table(self) -> EdgeTable:
        return self.query_one(EdgeTable)

    def _routes(self) -> DataTable[str | Text]:
        return self.query_one("#routes", DataTable)

    # -- a snapshot, drawn -------------------------------------------------------------

    def show_snapshot(self, snapshot: MeshSnapshot) -> None:
        """The app's new snapshot in the table, the graph and (when it shows) the routes."""
        if not self._drawn:
            return  # drawn on mount
        self._table().show(snapshot)
        if self.query_one(TabbedContent).active == "routes-tab":  # read only when it shows
            self._read_routes(snapshot)
        if self.query_one(TabbedContent).active == "posture-tab":  # likewise
            self._read_posture(snapshot)
        self.redraw_graph()

    def _read_routes(self, snapshot: MeshSnapshot) -> None:
        app = self.app
        planes = distinct({c: s.control_plane for c, s in app.clusters.items()})
        reading = show_routes(self._routes(), snapshot, planes, app.settings.timeout_s)
        self.run_worker(reading, group="routes", exclusive=True)

    def _read_posture(self, snapshot: MeshSnapshot) -> None:
        app, writable = self.app, not self.app.settings.read_only
        reading = self.query_one(PostureTab).load(
            snapshot, app.policies, app.settings.thresholds, app.settings.timeout_s, writable
        )
        self.run_worker(reading, group="posture", exclusive=True)

    def redraw_graph(self) -> None:
        """A new graph for the snapshot and the view options; a new layout only when
        the topology changed, seeded with the old one so boxes stay put."""
        snapshot = self.app.snapshot
        if snapshot is None or not self._drawn:
            return
        # the terminal less the rows always around the graph: not the canvas's size of
        # the moment, which a prompt or a notice takes a row from for a while
        size = Size(self.app.size.width, max(self.app.size.height - CHROME_ROWS, 1))
        view, lay, told = self.graph.draw(snapshot, size)
        if told:
            self.say(told)
        canvas = self._canvas()
        if not view.nodes:
            canvas.empty = self.graph.why_empty()
        canvas.show(view, lay)
        self.show_status()  # its counts and selection are of this view

    # -- the status line and the notice ---------------------------------------------------

    def show_status(self) -> None:
        app = self.app
        if not self._drawn:
            return
        told = [*app.settings.warnings, *app.themes.problems, *self.query_one(Notice).said]
        if app.snapshot is None:  # nothing to show yet but what the user was told
            self.notice("\n".join(told))
            return
        o, view, canvas = self.graph.options, self.graph.view, self._canvas()
        shown = None
        if view is not None and (o.filter or o.focus or o.cluster):
            shown = sum(len(e.members) for e in view.edges.values())
        zoom = (self.graph.placement.zoom, self.graph.placement.zoom_shown)
        self.query_one(StatusLine).show(
            app.snapshot,
            simulated=app.simulated,
            paused=app.paused,
            sort_name=self._table().sort_name,
            view=view_parts(o, view, (canvas.node, canvas.edge), zoom, canvas.label_mode),
            shown_edges=shown,
            sort_kept=self.query_one(TabbedContent).active == "edges-tab",  # the table's order
        )
        lines = told + problems(app.snapshot)
        if app.failures:
            lines.append(f"retrying in {app.retry_delay():g}s")
        self.notice("\n".join(lines))

    def say(self, text: str) -> None:
        """One line in place, for what the user typed or pressed; it goes after a while,
        or with the next thing said."""
        self.query_one(Notice).say(text, self.show_status)

    def notice(self, text: str) -> None:
        if self._drawn:
            self.query_one(Notice).show(text)

    # -- the graph's keys -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.is_active:
            return False  # a dialog is on top: these keys wait for it (the key line says)
        if action == "shift" and (self.app.settings.read_only or not self.app.stores):
            return False  # --read-only: the write key is not bound at all
        # typed into a prompt: `/` and `:` are text there
        return not (action == "prompt" and isinstance(self.focused, Input))

    def action_tab(self, tab: str) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = {"graph": "graph", "edges": "edges-tab", "routes": "routes-tab",
                       "posture": "posture-tab"}[tab]  # fmt: skip
        widget: Widget = {"graph": self._canvas(), "edges": self._table(), "routes": self._routes(),
                          "posture": self.query_one(PostureTab).table}[tab]  # fmt: skip
        self.set_focus(widget)  # at once: the next key is for it
        snapshot = self.app.snapshot
        if snapshot is not None:
            self.show_status()  # the sort is said on the edge table's tab
        if tab == "routes" and snapshot is not None:
            # subsets and Services are read from the cluster only while this tab shows
            self._read_routes(snapshot)
        if tab == "posture" and snapshot is not None:  # the security configuration too
            self._read_posture(snapshot)

    def action_refresh_now(self) -> None:
        self.app.request_refresh()

    def action_toggle_pause(self) -> None:
        self.app.paused = not self.app.paused
        self.show_status()

    def action_zoom(self, step: int) -> None:
        """`+` one zoom level more detailed, `-` one less, from the level on screen."""
        i = ZOOMS.index(self.graph.placement.zoom_shown) + step
        self.set_zoom(ZOOMS[max(0, min(i, len(ZOOMS) - 1))])

    def action_zoom_fit(self) -> None:
        self.set_zoom("fit")

    def set_zoom(self, zoom: str) -> None:
        self.graph.placement.zoom = zoom
        self.say("")
        self.redraw_graph()
        canvas = self._canvas()
        if canvas.node is not None:
            canvas.select(canvas.node, canvas.edge)  # keep it on screen
        self.show_status()

    def action_cycle_grouping(self) -> None:
        i = GROUPINGS.index(self.graph.options.grouping)
        self.set_grouping(GROUPINGS[(i + 1) % len(GROUPINGS)])

    def set_grouping(self, grouping: Grouping) -> None:
        self.graph.options.grouping = grouping
        self.graph.options.focus = None  # node names change with the grouping
        self.redraw_graph()

    def action_cycle_labels(self) -> None:
        canvas = self._canvas()
        self.set_labels(LABELS[(LABELS.index(canvas.label_mode) + 1) % len(LABELS)])

    def set_labels(self, mode: str) -> None:
        canvas = self._canvas()
        canvas.label_mode = mode
        canvas.redraw()
        self.show_status()

    def action_collapse(self, what: str) -> None:
        """`c`: the selected node's namespace as one box, or back; `C`: its cluster."""
        canvas = self._canvas()
        if self.graph.view is None or canvas.node is None:
            return
        try:
            key = self.graph.toggle_collapsed(canvas.node, what)
        except UsageError as exc:
            self.say(str(exc))
            return
        self.redraw_graph()
        here = self.graph.nodes_in(what, key)  # keep the selection there: on its box, or
        if here:  # on one of its nodes again
            canvas.select(here[0])
        self.show_status()

    def action_cycle_sort(self) -> None:
        table = self._table()
        table.cycle_sort()
        if self.app.snapshot is not None:
            table.show(self.app.snapshot)
        self.show_status()

    def action_shift(self) -> None:
        """`w`: the shift dialog for the route of the selected row or node."""
        if self.query_one(TabbedContent).active == "routes-tab":
            found = row_route(self._routes(), self.app.snapshot)
        else:
            found = node_route(self.graph.view, self.app.snapshot, self._canvas().node)
        self.changes.shift(found)

    # -- the selection, and opening it ------------------------------------------------------

    def on_graph_canvas_selected(self, message: GraphCanvas.Selected) -> None:
        """The edge table follows the graph's selection, and the status line names it."""
        self.show_status()
        view = self.graph.view
        if view is None or message.edge is None or message.edge not in view.edges:
            return
        a, b = view.edges[message.edge].members[0]
        self._table().select(a, b)

    @on(DataTable.RowHighlighted, "#edges")
    def _table_row(self, event: DataTable.RowHighlighted) -> None:
        """And the graph follows the table's, when the user moves in the table."""
        key = self._table_edge(event.row_key.value)
        if key is None or not event.data_table.has_focus:
            return
        canvas = self._canvas()
        if canvas.edge != key:
            canvas.node, canvas.edge = key[0], key
            canvas.redraw()
            self.show_status()

    @on(DataTable.RowSelected, "#edges")
    def _table_enter(self, event: DataTable.RowSelected) -> None:
        """`enter` in the edge table opens the edge, as in the graph."""
        key = self._table_edge(event.row_key.value)
        if key is not None:
            self.open_edge(key)

    def _table_edge(self, row: str | None) -> tuple[str, str] | None:
        """The graph's edge that draws the edge table's row `row`."""
        if self.graph.view is None or row is None:
            return None
        source, _, destination = row.partition(">")
        return next(
            (key for key, e in self.graph.view.edges.items() if (source, destination) in e.members),
            None,
        )

    def on_graph_canvas_open(self, message: GraphCanvas.Open) -> None:
        if message.edge is not None:
            self.open_edge(message.edge)
        elif message.node is not None:
            self.open_node(message.node)

    def open_edge(self, key: tuple[str, str]) -> None:
        """The edge's detail: its numbers now, then its history as it arrives."""
        view = self.graph.view
        if view is not None and key in view.edges:
            self._open(edge_screen, view.edges[key])

    def open_node(self, node: str) -> None:
        view = self.graph.view
        if view is not None and node in view.nodes:
            self._open(node_screen, node)

    def _open(self, detail: Callable[..., DetailScreen], what: object) -> None:
        app = self.app
        if app.snapshot is not None and self.graph.view is not None:
            window, thresholds = self.detail_window_s, app.settings.thresholds
            app.push_screen(detail(app.metrics, app.snapshot, self.graph.view, what, window,
                                   thresholds, self._chose_window, app.traces))  # fmt: skip

    def _chose_window(self, seconds: float) -> None:
        self.detail_window_s = seconds

    # -- the prompt: a filter, or a command ------------------------------------------------

    def action_prompt(self, kind: str) -> Input:
        filtering = kind == "/"
        hint = FILTER_HINT if filtering else commands.hint()
        prompt = self.query_one(Prompt).open(
            kind, self.graph.options.filter if filtering else "", hint
        )
        # at once, not on the next idle (`focus()`): a key typed right after `/` is the
        # first letter of the filter, not a command to the graph
        self.set_focus(prompt)
        return prompt

    def action_go_back(self) -> None:
        o = self.graph.options
        if self.query_one(Prompt).close():
            self.set_focus(self._canvas())
        elif o.focus or o.filter:
            o.focus, o.filter = None, ""
            self.say("")
            self.redraw_graph()

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        prompt = self.query_one(Prompt)
        prompt.close()
        self.set_focus(self._canvas())
        try:
            if prompt.kind == "/":
                self.set_filter(event.value.strip())
            else:
                self.run_command(event.value.strip())
        except MeshtopError as exc:
            self.say(str(exc))  # in place; the console goes on
        except Exception as exc:  # whatever was typed, the console goes on
            self.say(f"cannot do that: {type(exc).__name__}: {exc}")

    def set_filter(self, text: str) -> None:
        self.graph.set_filter(text, self.app.snapshot)
        self.say("")
        self.redraw_graph()

    def run_command(self, line: str) -> None:
        """`:ns shop`, `:focus reviews 2`, …: a command of the table in `commands.py`."""
        commands.run(self, line)
