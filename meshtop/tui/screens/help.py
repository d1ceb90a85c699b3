"""`?`: the keys of the screen it is pressed on, and what that screen's marks mean: the
graph and the edge table, a detail, the trace list, the waterfall, the shift dialog."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from meshtop import units
from meshtop.canary import PRESETS
from meshtop.history import WINDOWS
from meshtop.tui.commands import listed
from meshtop.tui.screens.sparing import Sparing

Rows = tuple[tuple[str, str], ...]
Sections = tuple[tuple[str, Rows], ...]

KEYS = (
    ("q", "quit"),
    ("?", "this help (esc closes it)"),
    ("1 … 5", "the graph / the edge table / the routes / the stat tab / the mTLS posture"),
    ("w", "shift the weights of the selected route, or of the selected node's route"),
    ("↑↓←→ or k j h l", "move between nodes: up and down a column, along the calls; in a "
                         "table, up and down its rows"),
    ("tab / shift+tab", "select the selected node's edges in turn"),
    ("enter", "open the selected node or edge: its history (1-6 windows), t its traces"),
    ("/", "filter: names (plain text), ns=NAME, error>1%, rps>10, p99>200, mtls=false; "
          "! inverts"),
(":", listed()),
    ("ctrl+p", "the command palette: the same commands, searched by name"),
    ("esc", "close the prompt, or take find's marks away, or clear the filter and the focus"),
    ("g", "group nodes by versioned app, app, workload or service"),
    ("t", "edge labels: rps, errors, p95, p99"),
    ("c", "collapse the selected node's namespace into one box (again: expand)"),
    ("C", "collapse the selected node's cluster into one box (again: expand)"),
    ("+ / - / z", "zoom: more detail, less (full boxes, one-line nodes, namespaces only), "
                  "or fit: the most detailed that fits the screen"),
    ("n / N", "the next / previous problem, worst first (failing, then degraded, by "
              "errors/s): its node in the graph, its worst edge in the edge table"),
    ("f", "find a node by name (whole, then start, then part): the best match selected, every "
          "match marked, nothing hidden; f and enter again: the next; esc unmarks"),
    ("s / S", "sort the table by the next column (or click a header) / the other way round; "
              ":sort COLUMN [asc|desc] by any; ▼ ▲ mark the sorted column; on the routes "
              "and posture tabs only the view: :sort off lists them as read (the routes' "
              "precedence)"),
    ("r / p", "refresh now / pause or resume refreshing"),
    ("y", "copy the selected node's or edge's name (in the edge table, its row's) to the "
          "clipboard; :promql its queries, :open a link to it"),
    ("[ / ]", "the whole console one window back / forward in time (:at -30m, :at 10:02); "
              "past now, or esc: live again; :compare -30m: each edge now beside then"),
    ("shift+arrows, pgup pgdn home end", "pan a large graph"),
    ("mouse", "click a box to select it, a table's row to put the cursor on it (again: "
              "enter), a header to sort by it; the wheel scrolls"),
)  # fmt: skip
GRAPH = (
    (
        "boxes",
        "rounded: healthy; dashed: degraded; heavy: failing (and coloured so); "
        "a group (app, collapsed namespace or cluster) as its worst member",
    ),
    ("│name│", "a node at the compact zoom: its bars are its border"),
    ("lines", "calls, with an arrowhead at the callee; colour by health"),
    (
        "labels",
        "the chosen figure with its unit, then 🔒 for mTLS or ! for plain text; "
        "a line with no room for its unit has no label",
    ),
    ("bands", "namespaces; a double line round them: their cluster"),
    ("╌ ⇄", "a dashed line, ⇄ on its label: a call from one cluster to another"),
    (
        "↯ ↯✗",
        "on a label and as the arrowhead: a call into a destination a route injects a "
        "fault into (a test, not an outage); ↯✗ and a reversed arrowhead: past the end "
        "meshtop set for it (the console removes it; :fault --clear too)",
    ),
)
COLUMNS = (
    (
        "health",
        "ok / warn / FAIL / idle, from Kiali's thresholds: 5xx above 0 warns, "
        "from 10% fails; 4xx from 10% warns, from 20% fails",
    ),
    ("RPS", "requests per second over the window (c/s: TCP connections per second)"),
    ("CLUSTER", "with several clusters: the edge's, west→east for a call between two"),
    ("ERR%", "share of requests failing: HTTP 5xx, gRPC non-OK, no response"),
    ("ERR/S", "requests failing per second (RPS times ERR%): what a failure costs"),
    ("P50 P95 P99", "latency percentiles over the window"),
    ("MTLS", "yes: all traffic on mutual TLS; no: none; else the share"),
)

STATS = (
    ("rows", "one per node of the grouping (g), worst first: failing, then degraded, each by "
             "errors/s; enter opens its detail"),
    ("SR RPS ERR/S", "what it answers: success rate, requests and failed requests a second"),
    ("4XX", "share answered with an HTTP 4xx, of the requests whose codes are known"),
    ("P50 P95 P99", "the slowest call's into it: quantiles of several calls do not add up"),
    ("MTLS TCP", "share on mutual TLS; TCP connections a second"),
    ("OUT …", "the same of what it calls"),
    ("LAST 1m", "its requests a second over the window, a bar a tenth of it, since the "
                "console started; each row on its own scale"),
)  # fmt: skip


CLOSE = ("?", "this help (esc or ? closes it)")
DETAIL_KEYS = (
    ("1 … 6", f"window {', '.join(units.duration(w) for w in WINDOWS)} (15m at first; "
              "the choice stays for the next screen)"),
    (":window 2h", "any window from 1m to 30d (:q goes back)"),
    ("r", "fetch again"),
    ("t", "the traces that crossed the edge (or the node)"),
    ("↑ ↓, pgup pgdn, home end", "scroll"),
    ("esc, q", "back to the graph"),
    CLOSE,
)  # fmt: skip
DETAIL_PANELS = (
    ("Requests, Errors", "over the window: a y axis in the unit, a time ruler, the value "
                         "at the end"),
    ("5xx gRPC no resp proxy 4xx", "errors by kind, one sparkline each on the plot's time: "
     "HTTP 5xx, gRPC non-OK, no response, a proxy's own verdict, HTTP 4xx (not errors)"),
    ("Traffic policy", "an edge's route rules: timeout beside the p99 and UT, retries beside "
                       "URX, a fault and its end (EXPIRED past it) beside FI/DI; the circuit "
                       "breaker beside UO/UH"),
    ("Latency", "one band: █ up to p50, ▓ up to p95, ░ up to p99"),
    ("a blank column", "a gap: no data then (no traffic, or no scrape), never a zero; a zero "
                       "is the lowest bar"),
    ("◂", "the version this screen is about"),
    ("▲", "a weight change meshtop made to a route that sends here (its audit log), at its "
          "time, said under the requests"),
)  # fmt: skip
TRACE_KEYS = (
    ("↑ ↓, j k, pgup pgdn, home end", "move between traces"),
    ("enter", "open the trace as a waterfall"),
    ("e", "only the traces with an error, of the sample (again: all): nothing is fetched"),
    ("d", "only those slower than 50ms, 100ms, 250ms, 500ms or 1s in turn, then all again"),
    ("/", "only those with an operation (empty: any)"),
    ("o", "order by start, or slowest first"),
    ("f", "fetch more: the backend's traces as filtered, added to the sample"),
    ("r", "a new sample from the trace backend, in place of this one"),
    ("y / O", "copy the trace's id / its page in Jaeger or Zipkin ([links] in the config)"),
    ("esc, q", "back to the detail"),
    CLOSE,
)
TRACE_COLUMNS = (
    ("!", "a trace with an error"),
    ("start, duration", "when it started, how long it took"),
    ("spans", "how many (? where the backend does not count them)"),
    ("root, services", "its first span's service and operation; every service it crossed"),
)
WATERFALL_KEYS = (
    ("↑ ↓, j k, pgup pgdn, home end", "move between spans; the span's tags, events and "
                                      "process show below"),
    ("enter, space", "fold or unfold the span's children"),
    ("z", "zoom to the selected span's time; a short span keeps a column, however long "
          "the trace"),
    ("+ / - / 0", "zoom in, out, back to the whole trace"),
    ("y / O", "copy the trace's id / its page in Jaeger or Zipkin ([links] in the config)"),
    ("esc, q", "back to the list"),
    CLOSE,
)  # fmt: skip
WATERFALL_MARKS = (
    ("▾ ▸", "a span's children shown / folded"),
    ("█", "the critical path (what the trace waited on), coloured as a warning; ▆ the rest"),
    ("!", "a failed span, in red: OTLP status ERROR, an error tag, HTTP 5xx, a gRPC status "
          "other than OK, Envoy response flags"),
    ("⤷", "a span whose parent is not in the trace, shown as a root"),
    ("◂ ▸ at a bar's end", "a span before or after the zoomed time"),
    ("12ms", "a span's duration: after its bar, before it, or in it where neither has room"),
)  # fmt: skip
SHIFT_KEYS = (
    ("↑ ↓ ← →, k j h l", "select a destination"),
    ("+ -, . ,, ] [", "its weight ±1, ±5, ±10 (in a VirtualService the others give or take, "
                      "largest first, so the weights add up to 100; an HTTPRoute's never "
                      "all reach 0)"),
    (f"0 … {len(PRESETS) - 1}", f"it takes {', '.join(f'{p}%' for p in PRESETS[:-1])} or "
                                f"{PRESETS[-1]}%; the others share the rest as they did"),
    ("p / a", "promote (all to the selected) / abort (all back to the stable one, which had "
              "the most)"),
    ("enter", "review the change as a diff; then y has the server check it (dry run) and "
              "applies it, as meshtop shift does"),
    ("R", "a guarded rollout of the selected destination, as meshtop rollout does it; s stops "
          "it between two steps"),
    ("A", "the change for every cluster's copy of the route, or for this one only"),
    ("esc", "back from the review; else close the dialog, changing nothing"),
    CLOSE,
)  # fmt: skip

MAIN: Sections = (
    ("Keys", KEYS),
    ("The graph", GRAPH),
    ("The edge table", COLUMNS),
    ("The stat tab", STATS),
)
DETAIL: Sections = (
    ("Keys: an edge's or a node's detail", DETAIL_KEYS),
    ("The panels", DETAIL_PANELS),
)
TRACES: Sections = (("Keys: the trace list", TRACE_KEYS), ("The columns", TRACE_COLUMNS))
WATERFALL: Sections = (("Keys: the waterfall", WATERFALL_KEYS), ("The marks", WATERFALL_MARKS))
SHIFT: Sections = (("Keys: the shift dialog", SHIFT_KEYS),)


def sections_for(screen: object | None) -> Sections:
    """The help of the screen `?` was pressed on; the graph's for the main screen."""
    # here, not at the top: those screens' modules need not load for the console to start
    from meshtop.tui.screens.detail import DetailScreen
    from meshtop.tui.screens.shift import ShiftScreen
    from meshtop.tui.screens.traces import TraceListScreen, WaterfallScreen

    for kind, sections in (
        (DetailScreen, DETAIL),
        (TraceListScreen, TRACES),
        (WaterfallScreen, WATERFALL),
        (ShiftScreen, SHIFT),
    ):
        if isinstance(screen, kind):
            return sections
    return MAIN


def help_table(sections: Sections = MAIN) -> Group:
    """Keys and marks as aligned tables; long descriptions wrap in their column."""
    parts: list[Text | Table] = []
    for title, rows in sections:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for key, what in rows:
            grid.add_row(Text(key), Text(what))
        parts += [Text(title, style="bold underline"), grid, Text("")]
    return Group(*parts[:-1])


class HelpScreen(Sparing, ModalScreen[None]):
    """The help of `for_screen` (the screen under it), or the graph's."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "app.pop_screen", "close", show=True),
    ]

    def __init__(self, for_screen: object | None = None) -> None:
        super().__init__()
        self.sections = sections_for(for_screen)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_table(self.sections), id="help-text")
