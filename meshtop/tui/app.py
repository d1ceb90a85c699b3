"""The console. A refresh runs in a thread worker; only when it has finished does the UI
draw the snapshot and schedule the next one, so refreshes never overlap and a slow
backend never freezes the keyboard. Refreshing pauses while a dialog is open."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.containers import Horizontal
from textual.geometry import Size
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import DataTable, Header, Input, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from meshtop import routes_view, units
from meshtop.canary import Plan, splittable
from meshtop.change import workflow
from meshtop.change.workflow import Copy, Workflow
from meshtop.config import Settings
from meshtop.copies import same_route
from meshtop.detail import routes_to
from meshtop.errors import EXIT_BUG, MeshtopError, UsageError
from meshtop.federation import FederatedControlPlane, store_for, where
from meshtop.graphview import (
    GROUPINGS,
    GraphView,
    Grouping,
    ViewNode,
    ViewOptions,
    apply_filter,
    build,
    resolve,
)
from meshtop.health import HealthMemory
from meshtop.layout import COMPACT, FULL, Box, Density, Layout, collapsed, layout
from meshtop.mesh import detached, refresh
from meshtop.model import (
    MeshSnapshot,
    NodeKind,
    Protocol,
    Route,
    SourceKey,
    SourceState,
    clusters,
)
from meshtop.sanitize import said
from meshtop.sources.protocols import ClusterSources, ControlPlane, MetricsSource, TraceSource
from meshtop.tui import commands
from meshtop.tui.safety import ControlFilter
from meshtop.tui.screens.confirm import ConfirmScreen
from meshtop.tui.screens.detail_intro import edge_screen, node_screen
from meshtop.tui.screens.help import HelpScreen
from meshtop.tui.screens.shift import ShiftScreen
from meshtop.tui.theme import ThemeSet, load_themes
from meshtop.tui.widgets.edge_table import EdgeTable
from meshtop.tui.widgets.graph import LABELS, GraphCanvas
from meshtop.tui.widgets.keyline import KeyLine
from meshtop.tui.widgets.status import Part, StatusLine, part, problems
from meshtop.tui.widgets.tables import fill


@dataclass
class SnapshotReady(Message):
    snapshot: MeshSnapshot


MAX_RETRY_S = 60.0
SHAPES_KEPT = 12  # view shapes (level, grouping, width) whose layout is kept to go back to
CHROME_ROWS = 5  # header, status line, tabs (two rows), key line
SAID_FOR_S = 8.0  # how long a line said in place stays (a problem of a source stays)
DETAIL_WINDOW_S = 900.0
# The keys of the graph and the table, which do nothing useful behind a dialog.
MAIN_SCREEN_ACTIONS = frozenset(
    ("prompt", "go_back", "tab", "cycle_grouping", "cycle_labels", "collapse", "cycle_sort",
     "refresh_now", "toggle_pause", "shift", "zoom", "zoom_fit")
)  # fmt: skip
W = TypeVar("W", bound=Widget)


ZOOMS = ("full", "compact", "namespaces")  # the most detailed first


def band(v: ViewNode, several: bool) -> str:
    """The band a node is drawn in: its namespace, inside its cluster's box when there
    are several clusters (`east/bookinfo`); peers outside every cluster in their own."""
    name = "all namespaces" if v.namespace == "*" else v.namespace
    return f"{v.cluster}/{name}" if several and v.cluster else name


@dataclass
class Seen:
    """Every node and call a view shape has shown since it was first drawn, and their
    layout: what goes keeps its place for when it comes back."""

    labels: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    layout: Layout | None = None

    def add(self, view: GraphView) -> bool:
        """Take in what `view` shows; whether anything was new."""
        several = len({v.cluster for v in view.nodes.values() if v.cluster}) > 1
        grew = False
        for n, v in view.nodes.items():
            group = band(v, several)
            if self.labels.get(n) != v.label or self.groups.get(n) != group:
                self.labels[n], self.groups[n] = v.label, group
                grew = True
        if not view.edges.keys() <= self.edges:
            self.edges |= view.edges.keys()
            grew = True
        return grew

    def lay_out(
        self, width: int, density: Density, room: int = 0, seed: Layout | None = None
    ) -> Layout:
        """The layout, each box as wide as its label, or `room` cells at most (the
        canvas cuts a longer name with `…`)."""
        return layout(
            self.labels,
            self.edges,
            label=lambda n: units.clip(self.labels[n], room) if room else self.labels[n],
            group=self.groups.__getitem__,
            previous=self.layout or seed,
            density=density,
            width=width,
        )


def _live(snapshot: MeshSnapshot) -> bool:
    """Whether to refresh at the normal pace: every source answered, or, over several
    clusters, some metrics did (one cluster out of reach must not slow the others'
    view; it is asked again each refresh, never for longer than the timeout)."""
    sources = {SourceKey.of(key): h for key, h in snapshot.sources.items()}
    if any(key.cluster for key in sources):
        return any(
            h.state is SourceState.FRESH for key, h in sources.items() if key.role == "metrics"
        )
    return all(h.state is SourceState.FRESH for h in sources.values())


ROUTE_COLUMNS = [(title, title) for title in routes_view.COLUMNS]


def _route_cells(row: routes_view.RouteRow) -> list[str | Text]:
    """A row of the routes tab, its problem in bold red."""
    *cells, problem = row.cells
    return [*cells, Text(problem, style="bold red") if problem else ""]


class MeshtopApp(App[None]):
    TITLE = "meshtop"
    CSS_PATH = "meshtop.tcss"
    # ctrl+p: the same commands as `:`, beside Textual's own (keys, screenshot, quit)
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = App.COMMANDS | {
        commands.Palette
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        # ctrl+c quits at once, as every terminal program's does (Textual asks first)
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
        Binding("question_mark", "help", "help", key_display="?"),
        # priority: the app takes these before it hands the next key on, so a key typed
        # right after `/` goes to the prompt, not to the graph (see check_action)
        Binding("slash", "prompt('/')", "filter", key_display="/", priority=True),
        Binding("colon", "prompt(':')", "command", key_display=":", priority=True),
        Binding("escape", "go_back", "back", show=False),
        Binding("1", "tab('graph')", "graph", show=False),
        Binding("2", "tab('edges')", "edges", show=False),
        Binding("3", "tab('routes')", "routes", show=False),
        Binding("w", "shift", "shift weights"),
        Binding("g", "cycle_grouping", "group"),
        Binding("t", "cycle_labels", "labels"),
        Binding("c", "collapse", "collapse", show=False),
        Binding("C", "collapse_cluster", "collapse cluster", show=False),
        Binding("r", "refresh_now", "refresh"),
        Binding("p", "toggle_pause", "pause"),
        Binding("s", "cycle_sort", "sort", show=False),
        Binding("plus", "zoom(-1)", "more detail", key_display="+", show=False),
        Binding("minus", "zoom(1)", "less detail", key_display="-", show=False),
        Binding("z", "zoom_fit", "fit", show=False),
    ]

    def __init__(
        self,
        metrics: MetricsSource,
        control_plane: ControlPlane | None = None,
        *,
        settings: Settings | None = None,
        simulated: bool = False,
        clock: Callable[[], float] = time.time,
        themes: ThemeSet | None = None,
        traces: TraceSource | None = None,
        writer: Any = None,
        clusters: Mapping[str, ClusterSources] | None = None,
    ) -> None:
        super().__init__()
        # what a refresh asks, cluster by cluster
        self.clusters = clusters or ClusterSources.one(metrics, control_plane, traces, writer)
        self._filters.append(ControlFilter())  # no control character reaches the terminal
        self.traces = traces
        # where weights are written (read(), apply()): the cluster, or the simulated mesh
        self.writer = writer
        self.last_plans: list[Plan] = []  # what :undo takes back (a copy per cluster)
        self.themes = themes or load_themes()
        self.metrics = metrics
        self.control_plane = control_plane
        self.settings = settings or Settings()
        self.simulated = simulated
        self.clock = clock
        self.snapshot: MeshSnapshot | None = None
        self.paused = False
        self._next: Timer | None = None
        self._unsay: Timer | None = None  # clears what _say said
        self._problems: list[str] = []
        self._in_flight = False  # one refresh at a time: a thread cannot be cancelled
        self._again = False  # asked for while one was in flight
        self._failures = 0  # refreshes in a row that failed: the retry backs off
        self.options = ViewOptions(thresholds=self.settings.thresholds)

        self.health_memory = HealthMemory()  # health that does not flap between refreshes
        self.view: GraphView | None = None
        self._layout: Layout | None = None
        # what each view shape (zoom level, grouping, collapsed) has shown, and its layout
        self._seen: dict[tuple[object, ...], Seen] = {}
        # the last collapsed layout: the layout under it, what it was made for, and it
        self._in_place: tuple[Layout, object, Layout] | None = None
        self.zoom = "fit"  # a level of ZOOMS, or fit: the most detailed that fits
        self.zoom_shown = ZOOMS[0]
        self._prompt_kind = ""
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
        # under the graph, not over it: a line said takes the graph's last rows for a
        # while and never moves what is drawn above
        yield Static("", id="notice")
        with Horizontal(id="prompt-row"):
            yield Static("/", id="prompt-kind")
            yield Input(id="prompt")
        yield KeyLine()

    def on_mount(self) -> None:
        self.sub_title = self.metrics.name
        for theme in self.themes.themes.values():
            self.register_theme(theme)
        if self.settings.theme in self.available_themes:
            self.theme = self.settings.theme
        if os.environ.get("NO_COLOR") and "meshtop-mono" in self.available_themes:
            self.theme = "meshtop-mono"  # https://no-color.org: no colour to carry meaning
        self.screen.set_focus(self._canvas())  # at once: a key typed at start is its
        self._table().thresholds = self.settings.thresholds
        self._table().memory = self.health_memory
        self.request_refresh()

    def _handle_exception(self, error: Exception) -> None:
        """An exception nothing in the console handled. Textual ends the app as it would
        (and a Pilot test gets the error), but not with its traceback on the screen:
        `meshtop` says the error in one line, keeps the traceback in a file and exits 70
        (meshtop.cli). Textual calls this for errors in handlers, drawing and workers."""
        super()._handle_exception(error)
        self._exit_renderables.clear()  # Textual's traceback, printed on the way out
        self._return_code = EXIT_BUG

    # The widgets live on the first screen; a dialog on top must not hide them from a
    # refresh that lands while it is open.
    def _main(self, kind: type[W], selector: str | None = None) -> W:
        screen = self.screen_stack[0]
        return screen.query_one(selector, kind) if selector else screen.query_one(kind)

    def _canvas(self) -> GraphCanvas:
        return self._main(GraphCanvas)

    def _table(self) -> EdgeTable:
        return self._main(EdgeTable)

    # -- refreshing ---------------------------------------------------------------

    def request_refresh(self) -> None:
        """Start a refresh, or, while one runs, start another as soon as it ends."""
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        self.poll()

    @work(group="refresh", exit_on_error=False)
    async def poll(self) -> None:
        # On a daemon thread of its own, not in a thread worker, which Textual's exit
        # would wait for: `q` and ctrl+q quit at once, whatever backend hangs.
        snapshot = await detached(
            lambda: refresh(
                self.clusters,
                window_s=self.settings.window_s,
                timeout_s=self.settings.timeout_s,
                previous=self.snapshot,
                clock=self.clock,
            )
        )
        self.post_message(SnapshotReady(snapshot))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        if not self.screen_stack or not self.is_running:  # closing: nothing to draw on
            return
        self.snapshot = message.snapshot
        self._failures = 0 if _live(message.snapshot) else self._failures + 1
        self._table().show(message.snapshot)
        if self._main(TabbedContent).active == "routes-tab":  # read only when it shows
            self.run_worker(self._show_routes(message.snapshot), group="routes", exclusive=True)
        self._redraw_graph()
        self._finished()

    def _redraw_graph(self) -> None:
        """A new graph for the snapshot and the view options; a new layout only when
        the topology changed, seeded with the old one so boxes stay put."""
        if self.snapshot is None:
            return
        try:
            view = build(self.snapshot, self.options, self.health_memory)
        except MeshtopError as exc:  # a filter, focus or cluster that no longer fits
            self.options.focus, self.options.filter = None, ""
            self._say(f"{exc}; filter and focus cleared")
            try:
                view = build(self.snapshot, self.options, self.health_memory)
            except MeshtopError:  # the cluster itself is gone
                self._say(f"{exc}; filter, focus and cluster cleared")
                self.options.cluster = ""
                view = build(self.snapshot, self.options, self.health_memory)
        self._layout = self._place(view)
        if self.zoom_shown == "namespaces":  # every namespace drawn as one box
            level = self._level_options("namespaces")
            try:
                view = build(self.snapshot, level, self.health_memory)
            except MeshtopError:  # a focus on a workload, which this level does not draw
                view = build(self.snapshot, replace(level, focus=None), self.health_memory)
                self._say("the namespaces zoom level draws no workload to focus on: + does")
        self.view = view
        canvas = self._canvas()
        if not view.nodes:
            canvas.empty = self._why_empty()
        canvas.show(view, self._layout)
        self._show_status()  # its counts and selection are of this view

    def _level_options(self, level: str) -> ViewOptions:
        """The options a zoom level draws with: `namespaces` collapses every namespace."""
        if level != "namespaces" or self.snapshot is None:
            return self.options
        every = {w.namespace for w in self.snapshot.nodes.values() if w.namespace}
        return replace(self.options, collapsed=self.options.collapsed | every)

    def _place(self, view: GraphView) -> Layout:
        """Where the boxes go. The layout is of everything the view's grouping has shown
        since it last changed, not of what the filter, focus or cluster leave: those hide
        boxes, they never move the others. A node or call that goes (a weight shifted
        to 0, a filter) keeps its place for when it comes back; a new one is placed
        around the rest. A collapsed namespace or cluster is drawn in place, as one box
        where its band was (`layout.collapsed`), so collapsing and expanding move
        nothing else. At `fit`, the most detailed zoom level that fits the terminal is
        chosen when the layout is made (a new node, a new size), never on a refresh."""
        assert self.snapshot is not None
        # the terminal less the rows always around the graph: not the canvas's size of
        # the moment, which a prompt or a notice takes a row from for a while
        size = Size(self.size.width, max(self.size.height - CHROME_ROWS, 1))
        levels: tuple[str, ...] = (self.zoom,)
        if self.zoom == "fit":  # a filter or focus names workloads: keep them drawn
            levels = ZOOMS[:-1] if self.options.filter or self.options.focus else ZOOMS
        chosen: Layout | None = None
        o = self.options
        # what is laid out: the view without filter, focus, cluster (or collapse, drawn
        # in place), one for full and compact, one for namespaces; the view on screen
        # when it is that already
        plain = not (o.filter or o.focus or o.cluster or o.collapsed or o.collapsed_clusters)
        bases: dict[bool, GraphView] = {}
        for level in levels:
            options = self._level_options(level)
            in_place = level != "namespaces"  # that level is every namespace collapsed
            if in_place:
                options = replace(options, collapsed=set(), collapsed_clusters=set())
            if in_place not in bases:
                bases[in_place] = (
                    view
                    if plain and in_place
                    else build(self.snapshot, replace(options, filter="", focus=None, cluster=""))
                )
            base = bases[in_place]
            shape = (level, options.grouping, frozenset(options.collapsed),
                     frozenset(options.collapsed_clusters), size.width)  # fmt: skip
            seen = self._seen.pop(shape, None) or Seen()
            self._seen[shape] = seen  # the most recent last; the oldest shapes go
            while len(self._seen) > SHAPES_KEPT:
                del self._seen[next(iter(self._seen))]
            grew = seen.add(base)
            if grew or seen.layout is None:
                density = COMPACT if level != "full" else FULL
                # compact names give up their ends before a level is given up
                for room in (0, 16, 14, 13, 12, 10) if level == "compact" else (0,):
                    seen.layout = seen.lay_out(size.width, density, room, self._layout)
                    if seen.layout.width <= size.width:
                        break
            chosen = seen.layout
            assert chosen is not None
            if chosen.width <= size.width and chosen.height <= size.height:
                break
        assert chosen is not None
        self.zoom_shown = level
        if in_place and (o.collapsed or o.collapsed_clusters):
            chosen = self._collapse_in_place(chosen, base)
        return chosen

    def _collapse_in_place(self, lay: Layout, expanded: GraphView) -> Layout:
        """The collapsed namespaces and clusters over `lay`, the layout of `expanded`."""
        assert self.snapshot is not None
        o = self.options
        key = (expanded.topology(), frozenset(o.collapsed), frozenset(o.collapsed_clusters))
        if self._in_place is not None and self._in_place[0] is lay and self._in_place[1] == key:
            return self._in_place[2]  # the same on a refresh: the canvas keeps its rows
        whole = build(self.snapshot, replace(o, filter="", focus=None, cluster=""))
        several = len({v.cluster for v in expanded.nodes.values() if v.cluster}) > 1
        boxes: dict[str, Box] = {}
        for n, v in whole.nodes.items():
            if n.endswith("/*/*") and v.namespace == "*":
                box = lay.clusters.get(v.cluster)
            elif n.endswith("/*"):
                box = lay.groups.get(band(v, several))
            else:
                continue
            if box is not None:
                boxes[n] = box
        member_of = {m: k for k, e in expanded.edges.items() for m in e.members}
        follows = {}
        for k, e in whole.edges.items():
            followed = next((member_of[m] for m in e.members if m in member_of), None)
            if followed is not None:
                follows[k] = followed
        placed = collapsed(lay, boxes, follows)
        self._in_place = (lay, key, placed)
        return placed

    def _why_empty(self) -> str:
        """What the canvas says when nothing is shown."""
        o = self.options
        if o.filter.startswith(("ns=", "namespace=")) and " " not in o.filter:
            ns = o.filter.split("=", 1)[1]
            return f" no namespace {ns!r} in the graph: esc shows every namespace"
        if o.filter:
            return f" nothing matches the filter {o.filter!r}: esc clears it"
        if o.cluster:
            return f" nothing in cluster {o.cluster!r}: :cluster all shows every cluster"
        return " no traffic in the window yet"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # A bug in a refresh must not take the console down: say so and try again later.
        if event.worker.group == "refresh" and event.state is WorkerState.ERROR:
            self._failures += 1
            self._notice(f"refresh failed: {event.worker.error}")
            self._finished()

    def _finished(self) -> None:
        self._in_flight = False
        if self._again:
            self._again = False
            self.request_refresh()
        else:
            self._schedule()

    def retry_delay(self) -> float:
        """The refresh interval, doubled for each failure in a row, up to a minute."""
        if not self._failures:
            return self.settings.refresh_s
        return float(min(MAX_RETRY_S, self.settings.refresh_s * 2 ** min(self._failures, 10)))

    def _schedule(self) -> None:
        if self._next is not None:
            self._next.stop()
        if not self.is_headless and not sys.stdin.isatty():
            self.exit(message="meshtop: the terminal went away")  # SSH dropped: stop polling
            return
        self._next = self.set_timer(self.retry_delay(), self._tick)

    def _tick(self) -> None:
        if self.paused or len(self.screen_stack) > 1:
            self._schedule()  # a dialog is open or the user paused: look again later
            return
        self.request_refresh()

    # -- drawing ------------------------------------------------------------------

    def _show_status(self) -> None:
        if self.snapshot is None:  # nothing to show yet but what the user was told
            self._notice(
                "\n".join([*self.settings.warnings, *self.themes.problems, *self._problems])
            )
            return
        self.sub_title = (
            f"{self.metrics.name} · window {units.duration(self.settings.window_s)}"
            f" · refresh {units.duration(self.settings.refresh_s)}"
        )
        o = self.options
        view: list[Part] = []
        if o.filter:
            view.append(part(f"filter {o.filter}", f"/{o.filter}", "bold"))
        if o.focus:
            labels = ",".join(self._label(n) for n in o.focus[0])
            view.append(part(f"focus {labels}±{o.focus[1]}", f"@{labels}±{o.focus[1]}", "bold"))
        if o.cluster:
            view.append(part(f"cluster {o.cluster}", f"c:{o.cluster}", "bold"))
        collapsed = ",".join(sorted(o.collapsed) + sorted(o.collapsed_clusters))
        if collapsed:
            view.append(part(f"collapsed {collapsed}", f"▣{collapsed}"))
        selected = self._selection()
        if selected[0]:
            view.append(part(f"▸ {selected[0]}", f"▸ {selected[1]}"))
        zoom = f"{self.zoom_shown} (fit)" if self.zoom == "fit" else self.zoom_shown
        view.append(part(f"zoom {zoom}", kept=False))
        view.append(part(f"graph {o.grouping.value}", kept=False))
        view.append(part(f"labels {self._canvas().label_mode}", kept=False))
        shown = None
        if self.view is not None and (o.filter or o.focus or o.cluster):
            shown = sum(len(e.members) for e in self.view.edges.values())
        self._main(StatusLine).show(
            self.snapshot,
            simulated=self.simulated,
            paused=self.paused,
            sort_name=self._table().sort_name,
            view=view,
            shown_edges=shown,
            sort_kept=self._main(TabbedContent).active == "edges-tab",  # the table's order
        )
        lines = [*self.settings.warnings, *self.themes.problems, *self._problems]
        lines += problems(self.snapshot)
        if self._failures:
            lines.append(f"retrying in {self.retry_delay():g}s")
        self._notice("\n".join(lines))

    def _label(self, node: str) -> str:
        v = self.view.nodes.get(node) if self.view is not None else None
        return v.label if v is not None else node.rsplit("/", 1)[-1]

    def _selection(self) -> tuple[str, str]:
        """The selected edge or node, named, with its figures: what the status line says
        of what the keys will act on; in full and short."""
        canvas = self._canvas()
        if self.view is None:
            return ("", "")
        e = self.view.edges.get(canvas.edge) if canvas.edge else None
        if e is not None:
            s = e.stats
            if s.protocol is Protocol.TCP:
                short = long = units.bytes_per_s(s.tcp_request_bps + s.tcp_response_bps)
            else:
                short = f"{units.rps(s.rps)} {units.percent(s.error_rate)}"
                long = f"{short} p99 {units.ms(s.p99_ms)}"
            a, b = self._label(e.source), self._label(e.destination)
            return (f"{a}→{b} {long}", f"{units.clip(a, 10)}→{units.clip(b, 10)} {short}")
        node = self.view.nodes.get(canvas.node) if canvas.node else None
        if node is None:
            return ("", "")
        inbound = [e.stats for e in self.view.edges.values() if e.destination == node.id]
        rps = sum(st.rps for st in inbound)
        figures = f" {node.health.value}" + (f" {units.rps(rps)} in" if rps else "")
        return (f"{node.label}{figures}", f"{units.clip(node.label, 16)}{figures}")

    def _say(self, text: str) -> None:
        """One line in place, for what the user typed or pressed; it goes after a while
        (SAID_FOR_S), or with the next thing said."""
        self._problems = [text] if text else []
        self._show_status()
        if self._unsay is not None:
            self._unsay.stop()
        self._unsay = self.set_timer(SAID_FOR_S, self._said_long_enough) if text else None

    def _said_long_enough(self) -> None:
        self._unsay = None
        self._problems = []
        self._show_status()

    def _notice(self, text: str) -> None:
        notice = self._main(Static, "#notice")
        notice.update(Text(said(text)))  # what a backend or the user said: shown, not markup
        notice.set_class(bool(text), "shown")

    def notify(self, message: str, **kwargs: Any) -> None:
        """Every toast, from any screen: shown, with credentials in URLs redacted."""
        super().notify(said(message), **kwargs)

    # -- actions ------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(for_screen=self.screen))  # that screen's keys

    def action_refresh_now(self) -> None:
        self.request_refresh()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self._show_status()

    # -- the graph --------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        tabs = self._main(TabbedContent)
        tabs.active = {"graph": "graph", "edges": "edges-tab", "routes": "routes-tab"}[tab]
        widget: Widget = {"graph": self._canvas(), "edges": self._table()}.get(
            tab, self._main(DataTable, "#routes")
        )
        self.screen_stack[0].set_focus(widget)  # at once: the next key is for it
        if self.snapshot is not None:
            self._show_status()  # the sort is said on the edge table's tab
        if tab == "routes" and self.snapshot is not None:
            # subsets and Services are read from the cluster only while this tab shows
            self.run_worker(self._show_routes(self.snapshot), group="routes", exclusive=True)

    # -- routes and weights ------------------------------------------------------------

    async def _show_routes(self, snapshot: MeshSnapshot) -> None:
        """The routes tab (`routes_view`): every rule's destinations, configured beside
        observed, and what is wrong with them."""
        if self.control_plane is None:
            return
        found = await routes_view.rows(snapshot, self.control_plane, self.settings.timeout_s)
        table = self._main(DataTable, "#routes")
        keep = table.cursor_row
        fill(table, ROUTE_COLUMNS, ((row.key, _route_cells(row)) for row in found))
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    def _routes_row(self) -> tuple[Route, int, int] | None:
        table = self._main(DataTable, "#routes")
        if self.snapshot is None or not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        route_id, rule, destination = key.rsplit("|", 2)
        route = next((r for r in self.snapshot.routes if r.id == route_id), None)
        return (route, int(rule), int(destination)) if route is not None else None

    def _node_route(self) -> tuple[Route, int, int] | None:
        """The route that splits the selected node's traffic, with the node's version."""
        canvas = self._canvas()
        if self.view is None or self.snapshot is None or canvas.node is None:
            return None
        node = self.view.nodes.get(canvas.node)
        if node is None:
            return None
        versions = {
            self.snapshot.nodes[m].version for m in node.members if m in self.snapshot.nodes
        }
        for route in routes_to(self.snapshot, node.members):
            for i in splittable(route.rules):
                names = [d.subset or d.host for d in route.rules[i].destinations]
                hit = next((j for j, n in enumerate(names) if n in versions), 0)
                if not route.rules[i].matches:
                    return route, i, hit
        return None

    def action_shift(self) -> None:
        """`w`: the shift dialog for the route of the selected row or node."""
        if self.writer is None:
            self._say("no control plane to write to: the console reads metrics only here")
            return
        tabs = self._main(TabbedContent)
        found = self._routes_row() if tabs.active == "routes-tab" else self._node_route()
        if found is None:
            self._say("no route splits this one's traffic by weight")
            return
        route, rule, selected = found
        if len(route.rules[rule].destinations) < 2:
            self._say(f"{route.name} rule {rule} has one destination: nothing to shift")
            return
        self._open_shift(route, rule, selected)

    def _copies(self, route: Route) -> dict[str, Copy]:
        """Where each cluster's copy of `route` is read and written: every cluster with a
        copy of it over several clusters (`A` in the dialog changes them all), else the
        one store there is."""
        clusters = [route.cluster]
        if isinstance(self.writer, FederatedControlPlane) and self.snapshot is not None:
            same = same_route(route)  # in the snapshot's order of clusters
            clusters = [c.cluster for c in self.snapshot.routes if same_route(c) == same]
            clusters += [] if route.cluster in clusters else [route.cluster]
        return {c: self._copy(c) for c in clusters}

    def _copy(self, cluster: str) -> Copy:
        """Where the copy of a route in `cluster` is read and written."""
        store = store_for(self.writer, cluster)
        return Copy(cluster, store, where(store))

    @work(group="shift-open", exclusive=True, exit_on_error=False)
    async def _open_shift(self, route: Route, rule: int, selected: int) -> None:
        """Read the route as it is now (the dialog tests that version), and leave alone a
        route that Flagger or Argo Rollouts steers: a change there would fight it."""
        copies = self._copies(route)
        mine = {route.cluster: copies[route.cluster]}
        try:
            reading = await workflow.read(mine, [route.kind], route.namespace, route.name)
        except MeshtopError as exc:
            self._say(f"cannot read {route.name}: {exc}")
            return
        if reading.unread:
            self._say(f"cannot read {route.name}: {reading.unread[route.cluster]}")
            return
        now, steered = reading.found[route.cluster]
        if steered:
            what = f"{route.kind} {route.namespace}/{route.name}"
            self._say(f"{what} is steered by {steered}: meshtop leaves it alone here "
                      "(meshtop shift --force changes it)")  # fmt: skip
            return
        screen = ShiftScreen(
            Workflow(copies, by="console"), now, rule, selected, (self.metrics, self.snapshot)
        )
        self.push_screen(screen, lambda plan: self._shifted(screen, plan))

    def _shifted(self, screen: ShiftScreen, plan: Plan | None) -> None:
        """After the dialog: what it wrote (one copy, or several, maybe in rounds), for
        `:undo`, and said once per cluster with the weights written last."""
        if not screen.applied:
            return
        self.last_plans = list(screen.applied)
        last = {p.route.cluster: p for p in screen.applied}  # the last write in each
        r = screen.applied[-1].route
        where_ = f" in {', '.join(last)}" if screen.stores else ""
        done = f"applied to {r.kind} {r.namespace}/{r.name}{where_}: "
        done += "; ".join(dict.fromkeys(p.after.text() for p in last.values()))
        if screen.report and plan is None:  # not every copy: say which were not
            done += f" ({screen.report})"
        self._say(f"{done}; :undo takes it back")
        self.request_refresh()

    @work(thread=True, group="undo", exit_on_error=False)
    def _undo(self, plans: list[Plan]) -> None:
        """Each copy's way back to what it was, planned from the route as it is now (a
        copy no longer as meshtop left it is said and left alone), shown for `y`."""

        last = {p.route.cluster: p for p in plans}  # each copy's last change, on the first's
        first = {p.route.cluster: p for p in reversed(plans)}
        copies = {c: self._copy(c) for c in last}
        back: dict[str, Plan] = {}
        failed: list[str] = []
        for cluster, plan in last.items():
            r = plan.route
            whole = Plan(r, plan.rule, first[cluster].before, plan.after)  # every round
            try:
                now, _ = asyncio.run(copies[cluster].store.read(r.kind, r.namespace, r.name))
                back[cluster] = workflow.undo_plan(now, whole)
            except MeshtopError as exc:
                failed.append(f"{cluster}: {exc}" if len(last) > 1 else str(exc))
        if not back:
            self.last_plans = []
            self.call_from_thread(self._say, f"cannot undo: {'; '.join(failed)}")
            return
        lines = [line for p in back.values() for line in p.diff()]
        lines += [f"not undone: {why}" for why in failed]
        name = plans[0].route.name
        self.call_from_thread(
            self.push_screen,
            ConfirmScreen(f"undo the last change of {name}", lines),
            lambda yes: self._undo_confirmed(copies, back, failed) if yes else None,
        )

    @work(thread=True, group="undo", exit_on_error=False)
    def _undo_confirmed(
        self, copies: dict[str, Copy], back: dict[str, Plan], failed: list[str]
    ) -> None:

        try:
            outcomes = asyncio.run(Workflow(copies, by="undo").apply(back))
        except MeshtopError as exc:  # the audit log: nothing was written
            self.call_from_thread(self._say, f"cannot undo: {exc}")
            return
        self.last_plans = []
        undone = [o.cluster for o in outcomes if o.ok]
        failed = failed + [
            f"{o.cluster}: {o.error or o.result}" if len(back) > 1 else str(o.error or o.result)
            for o in outcomes
            if not o.ok
        ]
        name = next(iter(back.values())).route.name
        if failed:
            done = f"; undone in {', '.join(undone)}" if undone else ""
            self.call_from_thread(self._say, f"cannot undo: {'; '.join(failed)}{done}")
        else:
            self.call_from_thread(self._say, f"undone: {name} is back to what it was")
        self.call_from_thread(self.request_refresh)

    def action_zoom(self, step: int) -> None:
        """`+` one zoom level more detailed, `-` one less, from the level on screen."""
        i = ZOOMS.index(self.zoom_shown) + step
        self.set_zoom(ZOOMS[max(0, min(i, len(ZOOMS) - 1))])

    def action_zoom_fit(self) -> None:
        self.set_zoom("fit")

    def set_zoom(self, zoom: str) -> None:
        self.zoom = zoom
        self._say("")
        self._redraw_graph()
        node = self._canvas().node
        if node is not None:
            self._canvas().select(node, self._canvas().edge)  # keep it on screen
        self._show_status()

    def on_resize(self) -> None:
        if self.snapshot is not None:  # a layout is for a width: at fit, a level too
            self.call_after_refresh(self._redraw_graph)

    def action_cycle_grouping(self) -> None:
        i = GROUPINGS.index(self.options.grouping)
        self.set_grouping(GROUPINGS[(i + 1) % len(GROUPINGS)])

    def set_grouping(self, grouping: Grouping) -> None:
        self.options.grouping = grouping
        self.options.focus = None  # node names change with the grouping
        self._redraw_graph()

    def action_cycle_labels(self) -> None:
        canvas = self._canvas()
        canvas.label_mode = LABELS[(LABELS.index(canvas.label_mode) + 1) % len(LABELS)]
        canvas.redraw()
        self._show_status()

    def action_collapse(self) -> None:
        """`c`: the selected node's namespace as one box, or back."""
        self._collapse("namespace")

    def action_collapse_cluster(self) -> None:
        """`C`: the selected node's cluster as one box, or back."""
        self._collapse("cluster")

    def _collapse(self, what: str) -> None:
        canvas = self._canvas()
        if self.view is None or canvas.node is None:
            return
        node = self.view.nodes[canvas.node]
        if node.kind in (NodeKind.UNKNOWN, NodeKind.EXTERNAL):
            self._say(f"unknown peers and external hosts have no {what} to collapse")
            return
        if what == "namespace" and node.namespace == "*":
            self._say("this box is a whole cluster: C expands it")
            return
        key = node.namespace if what == "namespace" else node.cluster
        box = self.options.collapsed if what == "namespace" else self.options.collapsed_clusters
        box ^= {key}
        self._redraw_graph()
        # keep the selection there: on its box, or on one of its nodes again
        assert self.view is not None
        here = sorted(
            n for n, v in self.view.nodes.items()
            if (v.namespace if what == "namespace" else v.cluster) == key
        )  # fmt: skip
        if here:
            canvas.select(here[0])
        self._show_status()

    def on_graph_canvas_open(self, message: GraphCanvas.Open) -> None:
        if message.edge is not None:
            self.open_edge(message.edge)
        elif message.node is not None:
            self.open_node(message.node)

    def open_edge(self, key: tuple[str, str]) -> None:
        """The edge's detail: its numbers now, then its history as it arrives."""
        if self.view is None or self.snapshot is None or key not in self.view.edges:
            return
        self.push_screen(
            edge_screen(
                self.metrics, self.snapshot, self.view, self.view.edges[key],
                self.detail_window_s, self.settings.thresholds, self._chose_window,
                self.traces,
            )
        )  # fmt: skip

    def _chose_window(self, seconds: float) -> None:
        self.detail_window_s = seconds

    def open_node(self, node: str) -> None:
        if self.view is None or self.snapshot is None or node not in self.view.nodes:
            return
        self.push_screen(
            node_screen(
                self.metrics, self.snapshot, self.view, node,
                self.detail_window_s, self.settings.thresholds, self._chose_window,
                self.traces,
            )
        )  # fmt: skip

    @on(DataTable.RowSelected, "#edges")
    def _table_enter(self, event: DataTable.RowSelected) -> None:
        """`enter` in the edge table opens the edge, as in the graph."""
        if self.view is None or event.row_key.value is None:
            return
        source, _, destination = event.row_key.value.partition(">")
        for key, e in self.view.edges.items():
            if (source, destination) in e.members:
                self.open_edge(key)
                return

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a detail or the help is open, the graph's keys wait for it to close."""
        if action == "shift" and (self.settings.read_only or self.writer is None):
            return False  # --read-only: the write key is not bound at all
        if action == "prompt" and isinstance(self.focused, Input):
            return False  # typed into a prompt: `/` and `:` are text there
        return not (len(self.screen_stack) > 1 and action in MAIN_SCREEN_ACTIONS)

    def on_graph_canvas_selected(self, message: GraphCanvas.Selected) -> None:
        """The edge table follows the graph's selection, and the status line names it."""
        self._show_status()
        if self.view is None or message.edge is None or message.edge not in self.view.edges:
            return
        a, b = self.view.edges[message.edge].members[0]
        self._table().select(a, b)

    @on(DataTable.RowHighlighted, "#edges")
    def _table_row(self, event: DataTable.RowHighlighted) -> None:
        """And the graph follows the table's, when the user moves in the table."""
        if self.view is None or event.row_key.value is None or not event.data_table.has_focus:
            return
        source, _, destination = event.row_key.value.partition(">")
        for key, e in self.view.edges.items():
            if (source, destination) in e.members:
                canvas = self._canvas()
                if canvas.edge != key:
                    canvas.node, canvas.edge = key[0], key
                    canvas.redraw()
                    self._show_status()
                return

    # -- filter and commands ------------------------------------------------------------

    def action_prompt(self, kind: str) -> None:
        prompt = self._main(Input, "#prompt")
        self._prompt_kind = kind
        prompt.placeholder = (
            "filter: names (plain text), ns=NAME, error>1%, rps>10, p99>200, mtls=false; ! inverts"
            if kind == "/"
            else commands.hint()
        )
        prompt.value = self.options.filter if kind == "/" else ""
        self._main(Static, "#prompt-kind").update(kind)
        self._main(Horizontal, "#prompt-row").add_class("shown")
        # at once, not on the next idle (`focus()`): a key typed right after `/` is the
        # first letter of the filter, not a command to the graph
        self.screen_stack[0].set_focus(prompt)

    def action_go_back(self) -> None:
        row = self._main(Horizontal, "#prompt-row")
        if row.has_class("shown"):
            row.remove_class("shown")
            self.screen_stack[0].set_focus(self._canvas())
        elif self.options.focus or self.options.filter:
            self.options.focus, self.options.filter = None, ""
            self._say("")
            self._redraw_graph()

    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        self._main(Horizontal, "#prompt-row").remove_class("shown")
        self.screen_stack[0].set_focus(self._canvas())
        try:
            if self._prompt_kind == "/":
                self.set_filter(event.value.strip())
            else:
                self.run_command(event.value.strip())
        except MeshtopError as exc:
            self._say(str(exc))  # in place; the console goes on
        except Exception as exc:  # whatever was typed, the console goes on
            self._say(f"cannot do that: {type(exc).__name__}: {exc}")

    def set_filter(self, text: str) -> None:
        apply_filter(GraphView({}, {}), text)  # the words make sense, snapshot or not
        self.options.filter = text
        if self.options.focus and self.snapshot is not None:
            # a filter may hide the focused node: then the focus goes, not the filter
            unfocused = replace(self.options, focus=None)
            if not set(self.options.focus[0]) <= set(build(self.snapshot, unfocused).nodes):
                self.options.focus = None
        self._say("")
        self._redraw_graph()

    def run_command(self, line: str) -> None:
        """`:ns shop`, `:focus reviews 2`, …: a command of the table in `commands.py`."""
        commands.run(self, line)

    def start_command(self, command: commands.Command) -> None:
        """From the command palette: a command that takes nothing runs at once; one that
        takes words opens the `:` prompt with its name typed."""
        if not command.words:
            try:
                self.run_command(command.name)
            except MeshtopError as exc:
                self._say(str(exc))
            return

        def open_prompt() -> None:  # once the palette is gone and its focus given back
            self.action_prompt(":")
            prompt = self._main(Input, "#prompt")
            prompt.value = f"{command.name} "
            # after its focus has selected all it holds: the words go after the name
            self.call_after_refresh(prompt.action_end)

        self.call_after_refresh(open_prompt)

    def cmd_q(self, args: list[str]) -> None:
        self.exit()

    def cmd_ns(self, args: list[str]) -> None:
        self.set_filter("" if not args or args[0] == "all" else f"ns={args[0]}")

    def cmd_cluster(self, args: list[str]) -> None:
        cluster = "" if not args or args[0] == "all" else args[0]
        there = clusters(self.snapshot.nodes.values()) if self.snapshot is not None else []
        if cluster and self.snapshot is not None and cluster not in there:
            raise UsageError(f"no cluster {cluster!r} in the mesh; there are {', '.join(there)}")
        self.options.cluster = cluster
        self._say("")
        self._redraw_graph()

    def cmd_collapse(self, args: list[str], collapse: bool = True) -> None:
        if args[:1] == ["cluster"] and len(args) == 2:
            names, name = self.options.collapsed_clusters, args[1]
        elif len(args) == 1:
            names, name = self.options.collapsed, args[0]
        else:
            raise UsageError(f"{'collapse' if collapse else 'expand'} takes NS or cluster NAME")
        (names.add if collapse else names.discard)(name)
        self._redraw_graph()

    def cmd_expand(self, args: list[str]) -> None:
        self.cmd_collapse(args, collapse=False)

    def cmd_focus(self, args: list[str]) -> None:
        if not args:
            self.options.focus = None
        else:
            if self.snapshot is None:
                raise UsageError("no graph yet: wait for the first refresh")
            hops = 1
            if len(args) > 1 and re.fullmatch(r"\d{1,3}", args[-1], re.ASCII):
                hops, args = int(args[-1]), args[:-1]
            # any node of the graph, not only those the current focus shows
            whole = build(self.snapshot, replace(self.options, focus=None))
            self.options.focus = (resolve(whole, " ".join(args)), hops)
        self._say("")
        self._redraw_graph()

    def cmd_graph(self, args: list[str]) -> None:
        choices = {g.value: g for g in GROUPINGS}
        if not args or args[0] not in choices:
            raise UsageError(f"graph takes one of {', '.join(choices)}")
        self.set_grouping(choices[args[0]])

    def cmd_labels(self, args: list[str]) -> None:
        if not args or args[0] not in LABELS:
            raise UsageError(f"labels takes one of {', '.join(LABELS)}")
        canvas = self._canvas()
        canvas.label_mode = args[0]
        canvas.redraw()
        self._show_status()

    def cmd_zoom(self, args: list[str]) -> None:
        if len(args) != 1 or args[0] not in (*ZOOMS, "fit"):
            raise UsageError(f"zoom takes one of {', '.join(ZOOMS)}, fit")
        self.set_zoom(args[0])

    def cmd_undo(self, args: list[str]) -> None:
        if self.settings.read_only or self.writer is None:
            raise UsageError("read-only: nothing to undo here")
        if not self.last_plans:
            raise UsageError("nothing to undo: no weight change in this session")
        self._undo(self.last_plans)

    def cmd_theme(self, args: list[str]) -> None:
        if not args or args[0] not in self.available_themes:
            raise UsageError(f"themes: {', '.join(sorted(self.available_themes))}")
        self.theme = args[0]
        self._canvas().redraw()
        self._say("")

    def action_cycle_sort(self) -> None:
        table = self._table()
        table.cycle_sort()
        if self.snapshot is not None:
            table.show(self.snapshot)
        self._show_status()
