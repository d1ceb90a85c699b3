"""`?`: every key and what the columns mean, on one screen."""

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

KEYS = (
    ("q", "quit"),
    ("?", "this help (esc closes it)"),
    ("1 / 2 / 3", "the graph / the edge table / the routes"),
    ("w", "shift the weights of the selected route, or of the selected node's route"),
    ("↑↓←→ or k j h l", "move between nodes: up and down a column, along the calls"),
    ("tab / shift+tab", "select the selected node's edges in turn"),
    ("enter", "open the selected node or edge: its history (1-6 windows), t its traces"),
    ("/", "filter: names (plain text), ns=NAME, error>1%, rps>10, p99>200, mtls=false; "
          "! inverts"),
    (":", "command: ns NAME, cluster NAME|all, focus NODE [HOPS], "
          "graph app|version|workload|service, labels rps|errors|p95|p99, collapse NS, "
          "expand NS, collapse cluster NAME, expand cluster NAME, undo, theme NAME, q"),
    ("esc", "close the prompt, or clear the filter and the focus"),
    ("g", "group nodes by versioned app, app, workload or service"),
    ("t", "edge labels: rps, errors, p95, p99"),
    ("c", "collapse the selected node's namespace into one box (again: expand)"),
    ("C", "collapse the selected node's cluster into one box (again: expand)"),
    ("s", "edge table: sort by the next column (or click a header)"),
    ("r / p", "refresh now / pause or resume refreshing"),
    ("shift+arrows, pgup pgdn home end", "pan a large graph"),
    ("mouse", "click a box to select it; the wheel scrolls"),
)  # fmt: skip
GRAPH = (
    ("boxes", "rounded: healthy; dashed: degraded; heavy: failing (and coloured so)"),
    ("lines", "calls, with an arrowhead at the callee; colour by health"),
    ("labels", "the chosen figure, then 🔒 for mTLS or ! for plain text"),
    ("bands", "namespaces; a double line round them: their cluster"),
    ("╌ ⇄", "a dashed line, ⇄ on its label: a call from one cluster to another"),
)
COLUMNS = (
    (
        "health",
        "ok / warn / FAIL / idle, from Kiali's thresholds: 5xx above 0 warns, "
        "from 10% fails; 4xx from 10% warns, from 20% fails",
    ),
    ("RPS", "requests per second over the window (c/s: TCP connections per second)"),
    ("ERR%", "share of requests failing: HTTP 5xx, gRPC non-OK, no response"),
    ("P50 P95 P99", "latency percentiles over the window"),
    ("MTLS", "yes: all traffic on mutual TLS; no: none; else the share"),
)


def help_table() -> Group:
    """Keys and columns as two aligned tables; long descriptions wrap in their column."""
    parts: list[Text | Table] = []
    for title, rows in (("Keys", KEYS), ("The graph", GRAPH), ("The edge table", COLUMNS)):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for key, what in rows:
            grid.add_row(Text(key), Text(what))
        parts += [Text(title, style="bold underline"), grid, Text("")]
    return Group(*parts[:-1])


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "app.pop_screen", "close", show=True),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(help_table(), id="help-text")
