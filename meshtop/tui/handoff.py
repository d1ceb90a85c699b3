"""The console's hand-off to other tools: `y` copies what is selected (a node's name, an
edge, a trace id) to the terminal's clipboard with OSC 52, unless `[console] clipboard =
false`; `:promql` lists the PromQL behind the selected node or edge, built by the
Prometheus source's own query builders; `:open` makes a link to it in Grafana, Jaeger or
Zipkin from the bases `[links]` names (`links.py` builds them)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from rich.text import Text
from textual.app import App
from textual.coordinate import Coordinate
from textual.timer import Timer
from textual.visual import VisualType
from textual.widgets import Static, TabbedContent
from textual.widgets.data_table import CellDoesNotExist

from meshtop.config.links import EXAMPLES
from meshtop.detail import Subject, subject
from meshtop.errors import UsageError
from meshtop.graphview import GraphView
from meshtop.history import history_step
from meshtop.model import MeshSnapshot
from meshtop.sanitize import said, shown
from meshtop.sources.dialects import ISTIO, Dialect
from meshtop.sources.prometheus import PrometheusMetrics, history_queries
from meshtop.sources.tracing.query import backend_service
from meshtop.sources.tracing.zipkin import ZipkinTraces
from meshtop.tui import links
from meshtop.tui.widgets.edge_table import EdgeTable, short_labels
from meshtop.tui.widgets.notice import SAID_FOR_S
from meshtop.units import duration

if TYPE_CHECKING:
    from meshtop.sources.protocols import TraceSource
    from meshtop.tui.app import MeshtopApp
    from meshtop.tui.graph_state import GraphState
    from meshtop.tui.widgets.graph import GraphCanvas

TOOLS = ("grafana", "jaeger", "zipkin")
EXPLORE_QUERIES = 8  # at most in one Explore pane: a link stays a link
LONG_NAME = 10**6  # short_labels' width: a name is never cut here
NOTICE_ROWS = 3  # the lines under the graph (#notice's max-height)


@dataclass(frozen=True, slots=True)
class Selected:
    """What is selected on the main screen, as another tool names it."""

    name: str  # `reviews-v3`, or `productpage-v1 → reviews-v3`
    about: Subject  # whose figures: the pairs of nodes the queries are about
    service: str  # the trace backends' name of it (of an edge, of its caller): `reviews.bookinfo`


def node_name(snapshot: MeshSnapshot, view: GraphView, node: str) -> str:
    """A node's name as meshtop takes it back (`:focus`, `meshtop edge`): a workload's
    name, with its namespace or cluster where the name alone is not unique (as the edge
    table writes it); a group's: the app (`reviews`), the namespace or cluster collapsed."""
    n = view.nodes[node]
    if len(n.members) == 1:
        return short_labels(snapshot, LONG_NAME).get(n.members[0], n.members[0])
    if node.endswith("/*/*"):
        return n.cluster or n.label
    if node.endswith("/*"):
        return n.namespace
    return n.label


def selected(
    snapshot: MeshSnapshot | None, view: GraphView | None, node: str | None,
    edge: tuple[str, str] | None,
) -> Selected | None:  # fmt: skip
    """The selected edge, else the selected node, of the graph's view; None for none."""
    if snapshot is None or view is None:
        return None
    if edge is not None and edge in view.edges:
        e = view.edges[edge]
        name = f"{node_name(snapshot, view, e.source)} → {node_name(snapshot, view, e.destination)}"
        sources = sorted({a for a, _ in e.members})
        destinations = sorted({b for _, b in e.members})
        return Selected(name, subject(snapshot, name, sources, destinations),
                        _service(snapshot, sources[0]))  # fmt: skip
    if node is None or node not in view.nodes:
        return None
    n = view.nodes[node]
    inbound = any(e.destination == node for e in view.edges.values())
    outbound = any(e.source == node for e in view.edges.values())
    name = node_name(snapshot, view, node)
    # as its detail asks: what it answers; for one that answers nothing, what it calls
    about = subject(snapshot, name, (), n.members, outbound=not inbound and outbound)
    return Selected(name, about, _service(snapshot, n.members[0]))


def edge_selected(snapshot: MeshSnapshot, source: str, destination: str) -> Selected:
    """One edge of the snapshot (an edge table's row), by its ends' ids."""
    names = short_labels(snapshot, LONG_NAME)
    name = f"{names.get(source, source)} → {names.get(destination, destination)}"
    return Selected(name, subject(snapshot, name, [source], [destination]),
                    _service(snapshot, source))  # fmt: skip


def _service(snapshot: MeshSnapshot, node_id: str) -> str:
    w = snapshot.nodes.get(node_id)
    if w is None:
        return node_id
    return backend_service(w.app or w.name.removeprefix("service:"), w.namespace)


def copy(app: MeshtopApp, text: str, said_as: str = "") -> str:
    """`text` copied to the terminal's clipboard (OSC 52, through Textual's driver), as
    shown (no control character reaches a paste), and the line that says so, naming it
    `said_as` or itself. With `[console] clipboard = false`, nothing is written: the
    line shows the text alone."""
    text = shown(text)
    if not app.settings.clipboard:
        return f"{said_as or text}   (not copied: [console] clipboard = false)"
    app.copy_to_clipboard(text)
    return f"copied: {said_as or text}"


# -- :promql ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    title: str
    promql: str
    ranged: bool  # a range query (what a chart draws), not one instant


def dialect(app: MeshtopApp, about: Subject) -> tuple[Dialect, str]:
    """The dialect of the backend the selection's figures come from (its caller's
    cluster's, as a federation asks it), and a line that says whose queries these are."""
    if app.simulated:
        return ISTIO, "the simulated mesh: what meshtop would send to Istio's metrics"
    metrics = app.metrics
    if not isinstance(metrics, PrometheusMetrics) and app.clusters:  # several clusters
        ends = [end.split("/", 1)[0] for end in (*about.sources, *about.destinations)]
        cluster = next((c for c in ends if c in app.clusters), next(iter(app.clusters)))
        metrics = app.clusters[cluster].metrics
    found = metrics.dialect if isinstance(metrics, PrometheusMetrics) else None
    if found is None:
        return ISTIO, f"{metrics.name} (its mesh not known yet: as Istio's metrics)"
    return found, f"{metrics.name}, {found.name}'s metrics"


def promql(app: MeshtopApp, sel: Selected, window_s: float) -> tuple[str, list[Query]]:
    """Whose queries, and each query behind the selection's figures: the Prometheus
    source's own (`history_queries`), the selection's labels filled in, each value a
    PromQL string. Per pair of nodes: the rates by response code and the latency
    quantiles of the detail's charts over `window_s` (the detail asks a namespace's
    pairs together, split by workload: the same figures), and the figures over the
    console's window, summed up."""
    d, whose = dialect(app, sel.about)
    now, charts = duration(app.settings.window_s), duration(window_s)
    found = []
    pairs = sel.about.pairs()
    for source, destination in pairs:
        queries = history_queries(d, source, destination, app.settings.window_s,
                                  history_step(window_s))  # fmt: skip
        ends = " → ".join(x for x in (source, destination) if x)
        where = f"{ends}: " if len(pairs) > 1 else ""
        found += [
            Query(f"{where}requests by response code, per step (the charts over {charts})",
                  queries["codes"], ranged=True),
            Query(f"{where}latency p50 p95 p99, per step (the charts over {charts})",
                  queries["latency"], ranged=True),
            Query(f"{where}the figures over the window ({now}): requests by reporter, code, "
                  "mTLS, and the latency quantiles", queries["window"], ranged=False),
        ]  # fmt: skip
    return whose, found


# -- :open --------------------------------------------------------------------------------


def tool_of(app: MeshtopApp, args: list[str], choices: tuple[str, ...] = TOOLS) -> str:
    """The tool `:open` links to: the one named, else the first of `choices` that
    `[links]` names; one clear line for one not set."""
    bases = app.settings.links.bases()
    where = app.settings.config_path or "the config file"
    if args and (args[0] not in TOOLS or len(args) > 1):
        raise UsageError(f"open takes one of {', '.join(TOOLS)}, or nothing")
    if args and args[0] not in bases:
        tool = args[0]
        raise UsageError(
            f'no {tool} link: set {tool} = "{EXAMPLES[tool]}" under [links] in {where}'
        )
    tool = args[0] if args else next((t for t in choices if t in bases), "")
    if not tool:
        keys = " or ".join(choices)
        raise UsageError(f"no link to open: set {keys} under [links] in {where}")
    return tool


def selection_link(app: MeshtopApp, sel: Selected, tool: str, window_s: float) -> str:
    """The selection in `tool`: Grafana Explore with its range queries, or a search for
    its service's traces (an edge's: its caller's) over the last hour."""
    base = app.settings.links.bases()[tool]
    if tool == "grafana":
        _, found = promql(app, sel, window_s)
        ranged = [q.promql for q in found if q.ranged][:EXPLORE_QUERIES]
        return links.explore(base, ranged, app.settings.links.grafana_datasource, window_s)
    if tool == "jaeger":
        return links.jaeger_search(base, sel.service)
    return links.zipkin_search(base, sel.service, app.clock())


def trace_link(app: MeshtopApp, traces: TraceSource | None, trace_id: str) -> str:
    """A trace in Jaeger or Zipkin: the one the traces come from first, where both are set."""
    prefer = ("zipkin", "jaeger") if isinstance(traces, ZipkinTraces) else ("jaeger", "zipkin")
    tool = tool_of(app, [], prefer)
    base = app.settings.links.bases()[tool]
    return (links.jaeger_trace if tool == "jaeger" else links.zipkin_trace)(base, trace_id)


# -- what the main screen's `y`, `:promql` and `:open` do -------------------------------


class MainScreen(Protocol):
    """What these use of the main screen."""

    app: MeshtopApp
    graph: GraphState
    detail_window_s: float  # the detail's window: the charts' queries are asked over it

    def _canvas(self) -> GraphCanvas: ...
    def _table(self) -> EdgeTable: ...
    def say(self, text: str) -> None: ...
    def query_one(self, selector: type[TabbedContent]) -> TabbedContent: ...


def _row(screen: MainScreen) -> tuple[str, str] | None:
    """The edge table's highlighted edge, while the table shows: what the user sees
    selected there (a row of the namespaces drawn as one box has no line of its own)."""
    if screen.query_one(TabbedContent).active != "edges-tab":
        return None
    table = screen._table()
    try:
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
    except CellDoesNotExist:
        return None
    source, _, destination = (key or "").partition(">")
    return (source, destination) if source and destination else None


def _selection(screen: MainScreen) -> Selected:
    canvas, snapshot = screen._canvas(), screen.app.snapshot
    row = _row(screen)
    if row is not None and snapshot is not None and snapshot.edge(*row) is not None:
        return edge_selected(snapshot, *row)
    found = selected(snapshot, screen.graph.view, canvas.node, canvas.edge)
    if found is None:
        raise UsageError("nothing is selected: select a node or an edge first")
    return found


def copy_selected(screen: MainScreen) -> None:
    """`y`: the selected edge's or node's name, copied and said."""
    try:
        screen.say(copy(screen.app, _selection(screen).name))
    except UsageError as exc:
        screen.say(str(exc))


def show_promql(screen: MainScreen) -> None:
    """`:promql`: the queries behind the selection, in a screen of their own."""
    from meshtop.tui.screens.handoff import HandoffScreen

    sel = _selection(screen)
    whose, found = promql(screen.app, sel, screen.detail_window_s)
    items = [(q.title, q.promql) for q in found]
    screen.app.push_screen(HandoffScreen(f"PromQL: {sel.name}", f"from {whose}", items))


def open_selected(screen: MainScreen, args: list[str]) -> None:
    """`:open [TOOL]`: a link to the selection, copied and said; one too long for the
    lines under the graph is shown whole in a screen of its own as well."""
    from meshtop.tui.screens.handoff import HandoffScreen

    tool = tool_of(screen.app, args)
    sel = _selection(screen)
    url = selection_link(screen.app, sel, tool, screen.detail_window_s)
    line = copy(screen.app, url)
    screen.say(line)
    if len(line) > NOTICE_ROWS * (screen.app.size.width - 2):
        title = f"Link: {sel.name} in {tool.capitalize()}"
        copied = "copied" if screen.app.settings.clipboard else "not copied ([console] clipboard)"
        note = f"{copied}: the whole link below, {len(url):,} characters"
        screen.app.push_screen(HandoffScreen(title, note, [(f"{tool} link", url)]))


# -- on the trace list and the waterfall: `y` and `O` ------------------------------------


def trace_id_line(app: App[object], trace_id: str | None) -> str:
    """`y` on a trace: its id, copied; the line that says so."""
    if not trace_id:
        return "no trace is selected"
    return copy(cast("MeshtopApp", app), trace_id)


def trace_link_line(app: App[object], traces: TraceSource | None, trace_id: str | None) -> str:
    """`O` on a trace: its page in Jaeger or Zipkin, copied; the line that says so."""
    if not trace_id:
        return "no trace is selected"
    meshtop = cast("MeshtopApp", app)
    try:
        return copy(meshtop, trace_link(meshtop, traces, trace_id))
    except UsageError as exc:
        return str(exc)


_SAID: weakref.WeakKeyDictionary[Static, tuple[VisualType, Timer]] = weakref.WeakKeyDictionary()


def say_in(note: Static, text: str) -> None:
    """`text` in a screen's one-line `note` for a while, as a line under the graph is
    said, then what the note said before (unless something else was said meanwhile)."""
    before, timer = _SAID.pop(note, (note.content, None))
    if timer is not None:
        timer.stop()
    line = Text(said(text), style="bold")
    note.update(line)

    def back() -> None:
        _SAID.pop(note, None)
        if note.content is line:
            note.update(before)

    _SAID[note] = (before, note.set_timer(SAID_FOR_S, back))
