"""The console's main screen: the graph, the edge table, the routes and the posture tabs,
under the status line, with the notice, the `/` and `:` prompt and the key line. It owns
how the snapshot is drawn (filter, focus, cluster, collapsed, zoom, grouping, labels,
sort), the selection, and the keys and `:` commands that change them; the app hands it
each snapshot. Its keys are its own, so a dialog or a detail on top of it never takes them.
Over 400 lines since drawing a large mesh in a worker (issue 17) and the posture
tab (issue 22) came to it; the keys on the graph could leave for a mixin, as the `:`
commands did (`commands.py`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Header, Input, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from meshtop import units
from meshtop.errors import MeshtopError, UsageError
from meshtop.federation import distinct
from meshtop.graphview import GROUPINGS, GraphView, Grouping, ViewOptions
from meshtop.health import Thresholds
from meshtop.layout import Layout
from meshtop.model import MeshSnapshot
from meshtop.sanitize import shown
from meshtop.tui import commands, handoff
from meshtop.tui.changes import Changes, node_route, row_route, show_routes
from meshtop.tui.covered import Covered
from meshtop.tui.first import drawn_first
from meshtop.tui.graph_state import GraphState
from meshtop.tui.placement import ZOOMS
from meshtop.tui.screens.detail import DetailScreen
from meshtop.tui.screens.detail_intro import edge_screen, node_screen
from meshtop.tui.screens.sparing import Sparing
from meshtop.tui.travel import TimeTravel
from meshtop.tui.widgets.edge_table import EdgeTable, per_s
from meshtop.tui.widgets.graph import LABELS, GraphCanvas, index_for
from meshtop.tui.widgets.keyline import KeyLine
from meshtop.tui.widgets.notice import Notice
from meshtop.tui.widgets.posture import PostureTab
from meshtop.tui.widgets.prompt import Prompt
from meshtop.tui.widgets.stat_table import StatTable
from meshtop.tui.widgets.status import Part, StatusLine, label, part, problems, view_parts
from meshtop.tui.widgets.tables import SortableTable

if TYPE_CHECKING:
    from meshtop.tui.app import MeshtopApp

CHROME_ROWS = 5  # header, status line, tabs (two rows), key line
# A snapshot of more edges is drawn from a worker, the screen answering meanwhile (issue 17)
DRAWN_AT_ONCE = 2_000
PROGRESS_AFTER_S = 0.15  # a drawing that takes longer says so
# ... unless it is a refresh of the graph on screen (its view, size and zoom the same):
# at 20,000 services every refresh's took longer, and "laying out" flashed every 2 s
REFRESH_PROGRESS_AFTER_S = 2.0
SWITCH_S = 0.001
DETAIL_WINDOW_S = 900.0
FILTER_HINT = (
    "filter: names (plain text), ns=NAME, error>1%, rps>10, p99>200, mtls=false; ! inverts"
)
FIND = "find: "  # the find prompt's sign
FIND_HINT = "a node by name: the same again goes to the next one; esc unmarks them"


@runtime_checkable
class Sortable(Protocol):
    """A table `S` and `:sort` sort (the edge table, the stat view's): duck-typed."""

    def sort_by(self, column: str, descending: bool | None) -> str | None: ...
    def reverse_sort(self) -> None: ...


class _Body(Covered, Vertical):
    pass


class _Tabbed(Covered, TabbedContent):
    pass


class _Pane(Covered, TabPane):
    pass


class MainScreen(Covered, commands.Commands, TimeTravel, Sparing, Screen[None]):
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
        Binding("4", "tab('stats')", "stats", show=False),
        Binding("5", "tab('posture')", "posture", show=False),
        Binding("w", "shift", "shift weights"),
        Binding("g", "cycle_grouping", "group"),
        Binding("t", "cycle_labels", "labels"),
        Binding("c", "collapse('namespace')", "collapse", show=False),
        Binding("C", "collapse('cluster')", "collapse cluster", show=False),
        Binding("r", "refresh_now", "refresh"),
        Binding("p", "toggle_pause", "pause"),
        Binding("s", "cycle_sort", "sort", show=False),
        Binding("S", "reverse_sort", "reverse sort", show=False),
        Binding("n", "problem(1)", "next problem", show=False),
        Binding("N", "problem(-1)", "previous problem", show=False),
        # priority, as `/`: a key typed right after `f` is the first letter found
        Binding("f", "prompt('find')", "find", show=False, priority=True),
        Binding("plus", "zoom(-1)", "more detail", key_display="+", show=False),
        Binding("minus", "zoom(1)", "less detail", key_display="-", show=False),
        Binding("z", "zoom_fit", "fit", show=False),
        Binding("y", "copy", "copy id", show=False),
        Binding("left_square_bracket", "travel(-1)", "back", key_display="[", show=False),
        Binding("right_square_bracket", "travel(1)", "forward", key_display="]", show=False),
    ]

    @dataclass
    class Drawn(Message):
        """A drawing made by the worker: what it was asked for, and what it made."""

        asked: tuple[MeshSnapshot, Size, ViewOptions, str]
        options: ViewOptions  # as it drew them (a filter that no longer fits cleared)
        view: GraphView
        layout: Layout
        told: str
        index: object

    def __init__(self, thresholds: Thresholds) -> None:
        super().__init__()
        self.graph = GraphState(thresholds)
        self.changes = Changes(self)
        self._drawn = False
        self._drawing = False  # a worker draws the graph
        self._wanted: tuple[MeshSnapshot, Size] | None = None  # the newest drawing asked for
        # what the graph on screen was drawn for: its size, view options and zoom level
        self._drawn_for: tuple[Size, ViewOptions, str] | None = None
        # for the worker to take: what to draw, the options, what is on screen
        self._to_draw: (
            tuple[
                tuple[MeshSnapshot, Size, ViewOptions, str],
                ViewOptions,
                tuple[Layout | None, object],
            ]
            | None
        ) = None
        self._then: list[Callable[[], None]] = []  # once the graph asked for is drawn
        self.working = ""  # what the worker does, said while it takes long
        self._problem: tuple[str, set[tuple[str | None, object]]] | None = None  # n's
        self._found = ""  # what find looked for, while its matches are marked
        # a view's lines by the snapshot's edges they draw (`_view_edge`)
        self._lines: tuple[GraphView, dict[tuple[str, str], tuple[str, str]]] | None = None
        # The detail screens open on the last window chosen in one, 15m at first.
        self.detail_window_s = DETAIL_WINDOW_S

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="")
        yield StatusLine("connecting…", id="status")
        with _Body(id="body"):  # the tabs, and the prompt over their last row
            with _Tabbed(initial="graph", id="tabs"):
                with _Pane("Graph", id="graph"):
                    yield GraphCanvas(id="canvas")
                with _Pane("Edges", id="edges-tab"):
                    yield EdgeTable(id="edges")
                with _Pane("Routes", id="routes-tab"):
                    yield SortableTable(id="routes")  # as listed: the precedence order
                with _Pane("Stats", id="stats-tab"):
                    yield StatTable(id="stats")
                with _Pane("Posture", id="posture-tab"):
                    yield PostureTab()
            yield Prompt()
        # under the graph, not over it: a line said takes the graph's last rows for a
        # while and never moves what is drawn above
        yield Notice()
        yield KeyLine()

    def on_mount(self) -> None:
        # the screen's thread takes the GIL back within a millisecond from a worker that
        # lays out a large mesh (or a refresh's thread): keys and q answer meanwhile
        sys.setswitchinterval(SWITCH_S)
        self._drawn = True  # its widgets are there: a snapshot is drawn from now on
        self.set_focus(self._canvas())  # at once: a key typed at start is its
        self._table().thresholds = self.app.settings.thresholds
        self._table().memory = self.graph.memory
        self._stats().thresholds = self.app.settings.thresholds
        self._stats().memory = self.graph.memory
        if self.app.snapshot is not None:  # a refresh that ended before this was drawn
            self.show_snapshot(self.app.snapshot)

    def _canvas(self) -> GraphCanvas:
        return self.query_one(GraphCanvas)

    def _table(self) -> EdgeTable:
        return self.query_one(EdgeTable)

    def _stats(self) -> StatTable:
        return self.query_one(StatTable)

    def _routes(self) -> DataTable[str | Text]:
        return self.query_one("#routes", DataTable)

    # -- a snapshot, drawn -------------------------------------------------------------

    def show_snapshot(self, snapshot: MeshSnapshot) -> None:
        """The app's new snapshot in the table, the graph and (when it shows) the routes."""
        if not self._drawn:
            return  # drawn on mount
        self._table().show(snapshot)
        self._stats().show(snapshot, self.graph.options.grouping)  # made while it shows
        if self.query_one(TabbedContent).active == "routes-tab":  # read only when it shows
            self._read_routes(snapshot)
        if self.query_one(TabbedContent).active == "posture-tab":  # likewise
            self._read_posture(snapshot)
        self.changes.policy.seen(snapshot)  # a fault past its end: removed (issue 21)
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

    def redraw_graph(self, then: Callable[[], None] | None = None) -> None:
        """A new graph for the snapshot and the view options; a new layout only when
        the topology changed, seeded with the old one so boxes stay put; `then` once it
        is drawn. Above DRAWN_AT_ONCE edges it is made by a worker, one at a time: the
        keys act on the graph on screen meanwhile, a progress line says what is made,
        and a change asked for meanwhile is made next, instead of what was asked before."""
        snapshot = self.app.snapshot
        if snapshot is None or not self._drawn:
            return
        # the terminal less the rows always around the graph: not the canvas's size of
        # the moment, which a prompt or a notice takes a row from for a while
        size = Size(self.app.size.width, max(self.app.size.height - CHROME_ROWS, 1))
        if then is not None:
            self._then.append(then)
        if len(snapshot.edges) > DRAWN_AT_ONCE or self._drawing:
            self._wanted = (snapshot, size)
            if not self._drawing:
                self._draw_next()
            self.show_status()  # what was asked for (`g`: the grouping) is said at once
            return
        view, lay, told = self.graph.draw(snapshot, size)
        self._show_drawn(view, lay, told, None)

    def _draw_next(self) -> None:
        if self._wanted is None:
            return
        snapshot, size = self._wanted
        self._wanted = None
        self._drawing = True
        asked = (snapshot, size, self.graph.options_copy(), self.graph.placement.zoom)
        canvas = self._canvas()
        on_screen = (canvas.layout_, canvas.view.topology() if canvas.view else None)
        self._to_draw = (asked, self.graph.options_copy(), on_screen)
        self._draw_in_worker()
        # a refresh of the graph on screen, no key waiting for it: said only if slow
        steady = canvas.view is not None and asked[1:] == self._drawn_for
        after = REFRESH_PROGRESS_AFTER_S if steady else PROGRESS_AFTER_S
        # the timer holds the count alone: not the snapshot, freed as the next one comes
        self.set_timer(after, partial(self._say_working, len(snapshot.nodes)))

    # described: Textual's default description is the repr of every argument, here a
    # snapshot of every edge (seconds of the screen's thread at 2,000 services). What to
    # draw is taken from `_to_draw` and cleared, not passed: Textual keeps a finished
    # worker's arguments until the garbage collector finds it (issue 17).
    @work(thread=True, group="graph", exit_on_error=False, description="drawing the graph")
    def _draw_in_worker(self) -> None:
        handed, self._to_draw = self._to_draw, None
        if handed is not None:  # one drawing at a time (`_drawing`): always there
            self._draw(*handed)

    def _draw(
        self,
        asked: tuple[MeshSnapshot, Size, ViewOptions, str],
        options: ViewOptions,
        on_screen: tuple[Layout | None, object],
    ) -> None:
        snapshot, size, _, _ = asked
        view, lay, told = self.graph.make(snapshot, size, options)
        # what to draw, made again only for another layout or topology than on screen
        same = lay is on_screen[0] and view.topology() == on_screen[1]
        index = None if same else index_for(view, lay)
        self.post_message(self.Drawn(asked, options, view, lay, told, index))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in the worker that draws: said, and the next drawing asked for made."""
        if event.worker.group == "graph" and event.state is WorkerState.ERROR:
            self._drawing, self.working = False, ""
            self.say(f"cannot draw the graph: {event.worker.error}")
            self._draw_next()

    def _say_working(self, nodes: int) -> None:
        if self._drawing and not self.working:
            self.working = f"laying out {nodes:,} nodes…"
            self.show_status()

    def on_main_screen_drawn(self, drawn: MainScreen.Drawn) -> None:
        drawn_first(self)
        self._drawing = False
        _, size, options, zoom = drawn.asked
        o = self.graph.options
        # asked for since, by a key or a resize: that one is made instead of this one
        if (o, self.graph.placement.zoom) != (options, zoom) or (
            self._wanted is not None and self._wanted[1] != size
        ):
            if self._wanted is None and self.app.snapshot is not None:
                self._wanted = (self.app.snapshot, size)
            self._draw_next()
            return
        # what the drawing cleared: a filter, focus or cluster that no longer fits
        o.filter, o.focus, o.cluster = (
            drawn.options.filter,
            drawn.options.focus,
            (drawn.options.cluster),
        )
        self.graph.view = drawn.view
        self._drawn_for = (size, options, zoom)
        self.working = ""
        self._show_drawn(drawn.view, drawn.layout, drawn.told, drawn.index)
        self._draw_next()  # a newer snapshot, if one came meanwhile

    def _show_drawn(self, view: GraphView, lay: Layout, told: str, index: object) -> None:
        if told:
            self.say(told)
        canvas = self._canvas()
        if not view.nodes:
            canvas.empty = self.graph.why_empty()
        if self._found:  # find's marks on this view's nodes
            canvas.matches = frozenset(self.graph.find(self._found, view))
        canvas.show(view, lay, index)  # type: ignore[arg-type]
        then, self._then = self._then, []
        for do in then:
            do()
        self.show_status()  # its counts and selection are of this view
        self._table().take_in_behind()  # once the graph is up, not in its way

    # -- the status line and the notice ---------------------------------------------------

    def show_status(self) -> None:
        app = self.app
        if not self._drawn:
            return
        told = [*app.settings.warnings, *app.themes.problems, *self.query_one(Notice).said]
        told += [self.working] if self.working else []
        if app.snapshot is None:  # nothing to show yet but what the user was told
            self.notice("\n".join(told))
            return
        o, view, canvas = self.graph.options, self.graph.view, self._canvas()
        shown = None
        if view is not None and (o.filter or o.focus or o.cluster):
            shown = sum(len(e.members) for e in view.edges.values())
        zoom = (self.graph.placement.zoom, self.graph.placement.zoom_shown)
        problem = self._problem_part(app.snapshot)
        selected = (None, None) if problem else (canvas.node, canvas.edge)
        parts = view_parts(o, view, selected, zoom, canvas.label_mode)
        if problem:  # in the selection's place: before the parts that may go
            at = next((i for i, p in enumerate(parts) if not p.kept), len(parts))
            parts.insert(at, problem)
        moment, compared, comparing = self.travel_status(app.snapshot, view)
        self.query_one(StatusLine).show(
            app.snapshot,
            simulated=app.simulated,
            paused=app.paused,
            sort_name=self._table().sort_said,
            view=parts,
            shown_edges=shown,
            sort_kept=self.query_one(TabbedContent).active == "edges-tab",  # the table's order
            moment=moment,
            compared=compared,
        )
        lines = told + problems(app.snapshot) + comparing
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
                       "stats": "stats-tab", "posture": "posture-tab"}[tab]  # fmt: skip
        widget: Widget = {"graph": self._canvas(), "edges": self._table(), "routes": self._routes(),
                          "stats": self._stats(),
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
        self.redraw_graph(then=self._keep_selection)
        self.show_status()

    def _keep_selection(self) -> None:
        canvas = self._canvas()
        if canvas.node is not None:
            canvas.select(canvas.node, canvas.edge)  # keep it on screen

    def action_cycle_grouping(self) -> None:
        i = GROUPINGS.index(self.graph.options.grouping)
        self.set_grouping(GROUPINGS[(i + 1) % len(GROUPINGS)])

    def set_grouping(self, grouping: Grouping) -> None:
        self.graph.options.grouping = grouping
        self.graph.options.focus = None  # node names change with the grouping
        if self.app.snapshot is not None:  # the stat tab's rows follow it
            self._stats().show(self.app.snapshot, grouping)
        self.redraw_graph()
        if self.graph.placement.zoom_shown == "namespaces":  # every box a namespace still
            self.say(f"grouped by {grouping}: drawn from the zoom level below namespaces (+)")

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
        self.redraw_graph(then=partial(self._select_in, what, key))
        self.show_status()

    def _select_in(self, what: str, key: str) -> None:
        here = self.graph.nodes_in(what, key)  # keep the selection there: on its box, or
        if here:  # on one of its nodes again
            self._canvas().select(here[0])

    def action_cycle_sort(self) -> None:
        table = self._table()
        table.cycle_sort()
        if self.app.snapshot is not None:
            table.show(self.app.snapshot)
        self.show_status()

    def action_copy(self) -> None:
        """`y`: the selected node's or edge's name to the clipboard (`handoff`)."""
        handoff.copy_selected(self)

    def action_reverse_sort(self) -> None:
        """`S`: the table shown (from the graph, the edge table) the other way round."""
        self.sortable().reverse_sort()
        self.show_status()

    def sort_table(self, column: str, descending: bool | None) -> None:
        """`:sort COLUMN [asc|desc]`, on the table shown (from the graph, the edge table),
        which keeps the focus the prompt gave the graph back to."""
        table = self.sortable()
        wrong = table.sort_by(column, descending)
        if wrong:
            raise UsageError(wrong)
        if isinstance(table, Widget) and self._on_tab_shown(table):
            self.set_focus(table)
        self.say("")
        self.show_status()

    def sortable(self) -> Sortable:
        shown = [w for w in self._tab_shown().query("*") if isinstance(w, Sortable)]
        return shown[0] if shown else self._table()

    def _tab_shown(self) -> Widget:
        return self.query_one(TabbedContent).active_pane or self._canvas()

    def _on_tab_shown(self, widget: Widget) -> bool:
        return self._tab_shown() in widget.ancestors

    # -- going to the problem, and finding a node -------------------------------------------

    def action_problem(self, step: int) -> None:
        """`n` / `N`: the next / previous problem, worst first (`health.problems`): its
        node selected in the graph (zoomed in to workloads from the namespaces level),
        its worst edge in the edge table, itself named on the status line."""
        self._at_nodes(partial(self._go_to_problem, step))

    def _at_nodes(self, then: Callable[[], None]) -> None:
        """`then`, once the graph draws nodes rather than whole namespaces."""
        if self.graph.placement.zoom_shown == "namespaces":
            self.graph.placement.zoom = "compact"
            self.redraw_graph(then=then)
        else:
            then()

    def _go_to_problem(self, step: int) -> None:
        snapshot = self.app.snapshot
        if snapshot is None or self.graph.view is None:
            return
        found = self.graph.problems(snapshot)
        if not found:
            self._problem = None
            self.say("no problem: nothing drawn is failing or degraded")
            return
        canvas, ids = self._canvas(), [p.node for p in found]
        here = self._problem_here()
        if here is not None and here in ids:
            i = (ids.index(here) + step) % len(ids)
        else:
            i = 0 if step > 0 else len(ids) - 1
        problem = found[i]
        line = self._view_edge(problem.edge)
        # where it stays the problem: on its node, or on its edge from the table
        self._problem = (problem.node, {(problem.node, None), (line[0] if line else None, line)})
        canvas.select(problem.node)
        if problem.edge is not None:
            self._table().select(*problem.edge)
        self.say("")
        self.show_status()

    def _problem_here(self) -> str | None:
        """The problem `n` went to, if it is still what is selected."""
        canvas = self._canvas()
        if self._problem is None or (canvas.node, canvas.edge) not in self._problem[1]:
            return None
        return self._problem[0]

    def _view_edge(self, edge: tuple[str, str] | None) -> tuple[str, str] | None:
        """The graph's line that draws the snapshot's `edge`: looked up in a map made
        once per view, not by a scan of every line's members (every edge of the mesh at
        the namespaces level) for each row the table's cursor goes to (issue 17)."""
        view = self.graph.view
        if view is None or edge is None:
            return None
        selected = self._canvas().edge
        if selected in view.edges and edge in view.edges[selected].members:
            # the selected line (each refresh puts the table's cursor back on its row):
            # the map is not made for it, 38 ms of the screen's thread a refresh at
            # 20,000 services
            return selected
        if self._lines is None or self._lines[0] is not view:
            self._lines = (view, {m: k for k, e in view.edges.items() for m in e.members})
        return self._lines[1].get(edge)

    def _problem_part(self, snapshot: MeshSnapshot) -> Part | None:
        """`problem 1/4: reviews v3 failing, 11.90% errors, 0.8 err/s`, while `n`'s
        problem is selected; its figures of this snapshot."""
        here = self._problem_here()
        if here is None:
            return None
        found = self.graph.problems(snapshot)
        i = next((i for i, p in enumerate(found) if p.node == here), None)
        if i is None:
            return None  # no longer a problem: the selection is said as ever
        p = found[i]
        name = shown(label(self.graph.view, p.node))
        figures = (f"{units.percent(p.error_rate)} errors, ", f"{per_s(p.errors_per_s)} err/s")
        if not p.errors_per_s and p.client_errors_per_s:  # in trouble by the callers' 4xx
            figures = ("", f"{units.percent(p.client_error_rate)} 4xx")
        return part(
            f"problem {i + 1}/{len(found)}: {name} {p.health.value}, {''.join(figures)}",
            f"{i + 1}/{len(found)} {units.clip(name, 16)} {p.health.value}, {figures[1]}",
            "bold",
        )

    def find(self, text: str) -> None:
        """`f` and a name, enter: the best match selected (the name, then the start of
        one, then a part), every match marked, nothing hidden; the same text again: the
        next match; nothing: the marks go."""
        if not text:
            self._unmark()
            return
        self._at_nodes(partial(self._find, text))

    def _find(self, text: str) -> None:
        canvas = self._canvas()
        matches = self.graph.find(text, self.graph.view, canvas.reading_order)
        if not matches:
            self._unmark()
            self.say(f"find: no node drawn is named {text!r}")
            return
        here = canvas.node if text == self._found else None
        i = (matches.index(here) + 1) % len(matches) if here in matches else 0
        self._found = text
        canvas.matches = frozenset(matches)
        canvas.select(matches[i])
        name = label(self.graph.view, matches[i])
        more = f"; f and enter: the next of {len(matches)}" if len(matches) > 1 else ""
        self.say(f"found {name} ({i + 1}/{len(matches)}){more}")

    def _unmark(self) -> bool:
        """Find's marks gone; whether there were any."""
        canvas, marked = self._canvas(), bool(self._found)
        self._found, canvas.matches = "", frozenset()
        if marked:
            canvas.redraw()
        return marked

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
        if not event.data_table.has_focus:
            return  # the graph moved the cursor: it has its selection already
        key = self._table_edge(event.row_key.value)
        if key is None:
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
        if row is None:
            return None
        source, _, destination = row.partition(">")
        return self._view_edge((source, destination))

    @on(DataTable.RowSelected, "#stats")
    def _stats_enter(self, event: DataTable.RowSelected) -> None:
        """`enter` in the stat tab opens the row's node, as in the graph: on the view and
        the snapshot the row was made of."""
        found = self._stats().opened(event.row_key.value)
        if found is not None:
            snapshot, view, node = found
            app, window, t = self.app, self.detail_window_s, self.app.settings.thresholds
            app.push_screen(
                node_screen(app.metrics, snapshot, view, node, window, t, self._chose_window,
                            app.traces)
            )  # fmt: skip

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
        value = self.graph.options.filter if filtering else ""
        if kind == "find":  # what was found last, so that enter goes to the next one
            kind, hint, value = FIND, FIND_HINT, self._found
        prompt = self.query_one(Prompt).open(kind, value, hint)
        # at once, not on the next idle (`focus()`): a key typed right after `/` is the
        # first letter of the filter, not a command to the graph
        self.set_focus(prompt)
        return prompt

    def action_go_back(self) -> None:
        o = self.graph.options
        if self.query_one(Prompt).close():
            self.set_focus(self._canvas())
        elif self._unmark():  # find's marks first, then the filter and the focus
            self.say("")
        elif o.focus or o.filter:
            o.focus, o.filter = None, ""
            self.say("")
            self.redraw_graph()
        elif self.travel.at is not None:  # then back to live
            self.cmd_at(["now"])

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        prompt = self.query_one(Prompt)
        prompt.close()
        self.set_focus(self._canvas())
        try:
            if prompt.kind == "/":
                self.set_filter(event.value.strip())
            elif prompt.kind == FIND:
                self.find(event.value.strip())
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
